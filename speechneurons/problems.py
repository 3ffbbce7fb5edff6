"""What a study could not use or compute, in one table and one page of the report.

Four kinds of problem, each with its reason: files the index rejected,
clips it kept with an audio flag (silent, DC offset, clipped, 8-bit), clips
that failed inside an activation or ablation job (the job went on with the
others), and analyses that a thin design cannot support (their tables are
empty or partly NaN, and their notes say why).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd
import pyarrow.parquet as pq

from speechneurons.failures import FAILED_SCHEMA
from speechneurons.pages import render
from speechneurons.provenance import notes_of
from speechneurons.schemas import empty_table
from speechneurons.integrity import read_parquet

#: Columns of ``failed_clips.parquet``: a failed clip per stage and parameter combination.
FAILED_CLIPS_SCHEMA = {**FAILED_SCHEMA, "combination": "str"}

#: The page's template (speechneurons/templates/).
TEMPLATE = "problems.html"


def combination_of(path: str | Path) -> str:
    """The ablation combination a results path belongs to ('' outside ``.../ablation/``).

    ``results/model~m/ablation/baseline~zero/segment_ms~20/reduction~mean/failed/shard-0.parquet``
    -> ``baseline~zero/segment_ms~20/reduction~mean`` (the model is the folder the table is in).
    """
    parts = Path(path).parts
    return "/".join(p for p in parts if "~" in p and not p.startswith("model~"))


def failed_clips(paths: Iterable[str | Path]) -> pd.DataFrame:
    """The failed-clips tables of every job, one table (FAILED_CLIPS_SCHEMA)."""
    tables = [read_parquet(p).assign(combination=combination_of(p)) for p in paths]
    tables = [t for t in tables if not t.empty]
    if not tables:
        return empty_table(FAILED_CLIPS_SCHEMA)
    out = pd.concat(tables, ignore_index=True)[list(FAILED_CLIPS_SCHEMA)]
    return out.astype(FAILED_CLIPS_SCHEMA).sort_values(["stage", "combination", "clip_id"],
                                                       ignore_index=True)


def grouped_notes(notes: Mapping[str, Sequence[str]], names: Sequence[str] | None = None
                  ) -> list[tuple[str, list[tuple[str, str]]]]:
    """The notes of :func:`not_computed` grouped under the table they concern, each reason once.

    notes: table name -> its notes, where a per-combination table's name is
    ``<combination>/<table>`` (``baseline~zero/segment_ms~20/reduction~mean/loudness``);
    names: every table name the study writes, to tell a reason of every
    combination from one of some (default: the names in ``notes``).
    Returns [(table, [(reason, where)])] in the order of ``names``; ``where``
    is "" for a table of the whole study, else the combinations it holds in.
    """
    names = list(names if names is not None else notes)
    split = {name: (name.rpartition("/")[2], name.rpartition("/")[0]) for name in [*names, *notes]}
    combinations: dict[str, list[str]] = {}
    for name in names:
        table, combination = split[name]
        combinations.setdefault(table, []).append(combination)
    reasons: dict[str, dict[str, list[str]]] = {}
    for name, items in notes.items():
        table, combination = split[name]
        for reason in items:
            reasons.setdefault(table, {}).setdefault(reason, []).append(combination)
    out = []
    for table in [t for t in combinations if t in reasons] + [t for t in reasons if t not in combinations]:
        grouped = []
        for reason, held in reasons[table].items():
            every = combinations.get(table, [])
            if held == [""]:
                where = ""
            elif len(every) > 1 and sorted(held) == sorted(every):
                where = f"all {len(every)} combinations"
            else:
                where = f"{len(held)} of {max(len(every), len(held))} combinations: " + "; ".join(held)
            grouped.append((reason, where))
        out.append((table, grouped))
    return out


def problems_page(rejected: pd.DataFrame, failed: pd.DataFrame,
                  not_computed: Mapping[str, Sequence[str]], clips: pd.DataFrame | None = None,
                  names: Sequence[str] | None = None) -> str:
    """A self-contained HTML page: rejected files, flagged clips, failed clips, analyses not computed.

    not_computed: table name -> sentences (its notes, or that it is empty),
    shown once per reason under the table's name (:func:`grouped_notes`, with
    ``names``); clips: the index's clips (their ``audio_flags``), None to
    leave the section out.
    """
    flagged = None if clips is None else clips[clips["audio_flags"].astype(bool)]
    return render(
        TEMPLATE,
        title="What this study could not use or compute",
        rejected=rejected.to_dict("records"),
        flagged=None if flagged is None else flagged.to_dict("records"),
        failed=failed.to_dict("records"),
        not_computed=grouped_notes(not_computed, names),
    )


def not_computed(tables: Mapping[str, str | Path]) -> dict[str, list[str]]:
    """name -> the notes a table carries, or "empty" for a table with no rows and no note."""
    out: dict[str, list[str]] = {}
    for name, path in tables.items():
        notes = notes_of(path)
        if not notes and pq.read_metadata(str(path)).num_rows == 0:
            notes = ["the table is empty: the clips do not hold what it compares"]
        if notes:
            out[name] = notes
    return out


def run_summary(rejected: str | Path, models: Mapping[str, tuple[str | Path, str | Path, Mapping[str, str | Path]]],
                report: str = "results/report.html") -> str:
    """What a finished run leaves to look at, for the end of Snakemake's output.

    rejected: the index's rejected table; models: name -> (failed-clips
    table, problems page, the tables whose notes the page reports). Files
    not there (a run stopped early with --until) are passed over.
    """
    lines = ["speechneurons: the run finished."]
    if Path(rejected).is_file() and (n := pq.read_metadata(str(rejected)).num_rows):
        lines.append(f"{n} file(s) under dataset.root are not clips, each with its reason: {rejected}")
    for name, (failed, page, tables) in models.items():
        if Path(failed).is_file() and len(clips := read_parquet(failed, columns=["clip_id"])):
            lines.append(f"model {name}: {clips['clip_id'].nunique()} clip(s) failed in some job: {failed}")
        missing = not_computed({k: v for k, v in tables.items() if Path(v).is_file()})
        if missing:
            lines.append(f"model {name}: {len(missing)} table(s) hold analyses that were not computed, "
                         f"each with why: {page}")
    lines.append(f"The report: snakemake --report {report} (then open it in a browser).")
    return "\n".join(lines)

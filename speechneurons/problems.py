"""What a study could not use or compute, in one table and one page of the report.

Four kinds of problem, each with its reason: files the index rejected,
clips it kept with an audio flag (silent, DC offset, clipped, 8-bit), clips
that failed inside an activation or ablation job (the job went on with the
others), and analyses that a thin design cannot support (their tables are
empty or partly NaN, and their notes say why).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd
import pyarrow.parquet as pq

from speechneurons.failures import FAILED_SCHEMA
from speechneurons.provenance import notes_of
from speechneurons.tables import empty_table

#: Columns of ``failed_clips.parquet``: a failed clip per stage and parameter combination.
FAILED_CLIPS_SCHEMA = {**FAILED_SCHEMA, "combination": "str"}


def combination_of(path: str | Path) -> str:
    """The ablation combination a results path belongs to ('' outside ``.../ablation/``).

    ``results/model~m/ablation/baseline~zero/segment_ms~20/reduction~mean/failed/shard-0.parquet``
    -> ``baseline~zero/segment_ms~20/reduction~mean`` (the model is the folder the table is in).
    """
    parts = Path(path).parts
    return "/".join(p for p in parts if "~" in p and not p.startswith("model~"))


def failed_clips(paths: Iterable[str | Path]) -> pd.DataFrame:
    """The failed-clips tables of every job, one table (FAILED_CLIPS_SCHEMA)."""
    tables = [pd.read_parquet(p).assign(combination=combination_of(p)) for p in paths]
    tables = [t for t in tables if not t.empty]
    if not tables:
        return empty_table(FAILED_CLIPS_SCHEMA)
    out = pd.concat(tables, ignore_index=True)[list(FAILED_CLIPS_SCHEMA)]
    return out.astype(FAILED_CLIPS_SCHEMA).sort_values(["stage", "combination", "clip_id"],
                                                       ignore_index=True)


def _table(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in frame[list(columns)].itertuples(index=False))
    return f"<table><tr>{head}</tr>{rows}</table>"


def problems_page(rejected: pd.DataFrame, failed: pd.DataFrame,
                  not_computed: Mapping[str, Sequence[str]], clips: pd.DataFrame | None = None) -> str:
    """A self-contained HTML page: rejected files, flagged clips, failed clips, analyses not computed.

    not_computed: table name -> sentences (its notes, or that it is empty);
    clips: the index's clips (their ``audio_flags``), None to leave the section out.
    """
    sections = ["<h1>What this study could not use or compute</h1>"]
    sections.append(f"<h2>Files the index rejected ({len(rejected)})</h2>")
    sections.append(_table(rejected, ["path", "reason"]) if len(rejected) else "<p>None.</p>")
    if clips is not None:
        flagged = clips[clips["audio_flags"].astype(bool)]
        sections.append(f"<h2>Clips kept with an audio flag ({len(flagged)})</h2>")
        sections.append("<p>They decode, but their attributions may mislead: silent (no sample above "
                        "-60 dBFS), dc_offset (a mean above -40 dBFS: every segment looks loud), "
                        "clipped (over 0.1 % of samples at full scale), 8bit (samples on the 8-bit "
                        "grid).</p>")
        sections.append(_table(flagged, ["clip_id", "path", "audio_flags"]) if len(flagged)
                        else "<p>None.</p>")
    sections.append(f"<h2>Clips that failed inside a job ({len(failed)})</h2>")
    sections.append("<p>The job went on with its other clips; these clips are missing from the "
                    "tables of that stage.</p>")
    sections.append(_table(failed, ["clip_id", "path", "stage", "combination", "error"])
                    if len(failed) else "<p>None.</p>")
    notes = [(name, note) for name, items in not_computed.items() for note in items]
    sections.append(f"<h2>Analyses not computed ({len(notes)})</h2>")
    if notes:
        sections.append("<p>A design too thin for a statistic does not stop the run: its table is "
                        "empty or its columns are NaN, for the reason given.</p>")
        sections.append(_table(pd.DataFrame(notes, columns=["table", "reason"]), ["table", "reason"]))
    else:
        sections.append("<p>None: every analysis had the data it needs.</p>")
    style = ("body{font-family:sans-serif;margin:2em;max-width:70em}"
             "table{border-collapse:collapse;margin-bottom:1em}"
             "td,th{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Problems</title>"
            f"<style>{style}</style></head><body>{''.join(sections)}</body></html>")


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
        if Path(failed).is_file() and len(clips := pd.read_parquet(failed, columns=["clip_id"])):
            lines.append(f"model {name}: {clips['clip_id'].nunique()} clip(s) failed in some job: {failed}")
        missing = not_computed({k: v for k, v in tables.items() if Path(v).is_file()})
        if missing:
            lines.append(f"model {name}: {len(missing)} table(s) hold analyses that were not computed, "
                         f"each with why: {page}")
    lines.append(f"The report: snakemake --report {report} (then open it in a browser).")
    return "\n".join(lines)

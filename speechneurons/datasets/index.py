"""The index of any corpus: scan a root into clips and rejected files, then filter.

A corpus module yields, per file it recognises, the file's path relative to
the root and either its metadata (speaker, each factor, extra columns) or
the reason the name is not valid. This module does the rest for every
corpus: reads each audio header and decodes the file once, rejects short,
undecodable and duplicate clips with a reason, applies ``dataset.filters``,
and caps cells. One bad file never stops the scan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from speechneurons.audio import AudioError, read_header_and_check
from speechneurons.datasets.spec import SPEAKER, CorpusSpec, nearest

if TYPE_CHECKING:
    from speechneurons.datasets import Corpus

log = logging.getLogger(__name__)

#: Files with these suffixes are candidates; anything else under the root
#: (licence notes, .DS_Store, spreadsheets) is not part of a corpus.
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif"}

#: The shortest clip the index accepts by default (``dataset.min_duration_s``).
#: The wav2vec2-family convolutional front end reads 400 samples (25 ms at
#: 16 kHz) for its first frame; a clip shorter than that fails inside the
#: model, and one of a few frames says little about a unit.
MIN_DURATION_S = 0.1

AUDIO_COLUMNS = ["sample_rate", "channels", "num_frames", "duration_s"]
REJECTED_COLUMNS = ["path", "reason"]


def clip_columns(spec: CorpusSpec) -> list[str]:
    """Columns of ``clips.parquet`` in order (the contract later stages read)."""
    return ["clip_id", "path", *spec.columns, *AUDIO_COLUMNS]


def audio_files(root: Path, suffixes: set[str] = AUDIO_SUFFIXES) -> list[Path]:
    """Every file under ``root`` whose suffix is one of ``suffixes``, sorted."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def by_name(root: Path, parse: Callable[[Path], dict],
            suffixes: set[str] = AUDIO_SUFFIXES) -> Iterator[tuple[str, dict | str]]:
    """Per file under ``root`` with one of ``suffixes``: (relative path, ``parse(path)``), or the
    ValueError's message when ``parse`` rejects the name (a corpus whose metadata is its names)."""
    for path in audio_files(root, suffixes):
        rel = path.relative_to(root).as_posix()
        try:
            yield rel, parse(path)
        except ValueError as err:
            yield rel, str(err)


@dataclass(frozen=True)
class IndexFilters:
    """Which valid clips enter the study (``dataset.filters`` in the config).

    ``keep``: clips column -> values to keep (a missing or empty list keeps
    every value). ``max_per_cell`` keeps at most that many clips per cell
    of the corpus's target, group and graded factors, drawn with ``seed``.
    """

    keep: dict[str, list] = field(default_factory=dict)
    max_per_cell: int | None = None
    seed: int = 0

    @classmethod
    def from_config(cls, section: dict | None, spec: CorpusSpec) -> "IndexFilters":
        """Build from ``dataset.filters``; a key or value the corpus lacks is an error naming it."""
        section = {**spec.default_filters, **dict(section or {})}
        max_per_cell = section.pop("max_per_cell", None)
        seed = section.pop("seed", 0)
        keys = spec.filter_keys()
        keep: dict[str, list] = {}
        for key, values in section.items():
            if key not in keys:
                raise KeyError(f"dataset.filters.{key}: not a filter of corpus {spec.name}"
                               f"{nearest(key, list(keys))}; its filters: {', '.join(sorted(keys))}, "
                               "max_per_cell, seed")
            if not values:
                continue
            allowed = spec.allowed(keys[key])
            bad = sorted(set(values) - allowed, key=str) if allowed is not None else []
            if bad:
                raise ValueError(f"dataset.filters.{key}: {bad} not among "
                                 f"{sorted(allowed, key=str)} of corpus {spec.name}")
            keep[keys[key]] = list(values)
        if max_per_cell is not None and max_per_cell < 1:
            raise ValueError("dataset.filters.max_per_cell must be >= 1 or null")
        return cls(keep=keep, max_per_cell=max_per_cell, seed=seed)


class NoValidClipsError(RuntimeError):
    """Raised when a scan leaves no clip to study."""


@dataclass
class IndexResult:
    """What :func:`build_index` found: the study's clips and the rejected files."""

    clips: pd.DataFrame
    rejected: pd.DataFrame
    valid_before_filters: int = 0
    notes: list[str] = field(default_factory=list)


def scan(corpus: "Corpus", root: str | Path, progress: bool = True,
         min_duration_s: float = MIN_DURATION_S) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check every file the corpus recognises under ``root``: (valid clips, rejected files).

    A file shorter than ``min_duration_s`` seconds is rejected with that
    reason. Raises FileNotFoundError naming ``root`` when it is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset.root: {root} is not a folder")
    spec = corpus.spec
    rows: list[dict] = []
    rejected: list[dict] = []
    seen: dict[str, str] = {}
    entries = list(corpus.describe(root))
    for rel, found in tqdm(entries, desc="index", unit="file", disable=not progress):
        if isinstance(found, str):
            rejected.append({"path": rel, "reason": found})
            continue
        try:
            header = read_header_and_check(root / rel)
        except (AudioError, ValueError) as err:
            rejected.append({"path": rel, "reason": str(err)})
            continue
        if header.duration_s < min_duration_s:
            rejected.append({"path": rel, "reason": (
                f"too short: {header.duration_s:.4f} s < dataset.min_duration_s = {min_duration_s} s "
                "(the model's convolutional front end needs at least 400 samples, 25 ms)")})
            continue
        clip_id = str(found.get("clip_id") or Path(rel).stem)
        if clip_id in seen:
            rejected.append({"path": rel, "reason": f"duplicate clip_id, first seen at {seen[clip_id]}"})
            continue
        seen[clip_id] = rel
        rows.append({**found, "clip_id": clip_id, "path": rel, "sample_rate": header.sample_rate,
                     "channels": header.channels, "num_frames": header.num_frames,
                     "duration_s": header.duration_s})
    clips = pd.DataFrame(rows, columns=clip_columns(spec))
    clips = clips.astype({"sample_rate": "int64", "channels": "int64", "num_frames": "int64",
                          "duration_s": "float64"})
    return clips, pd.DataFrame(rejected, columns=REJECTED_COLUMNS)


def cell_columns(spec: CorpusSpec) -> list[str]:
    """The cell ``max_per_cell`` caps: the target, group and graded factors."""
    cell = [spec.target, spec.group, spec.graded[0] if spec.graded else None]
    return [c for c in dict.fromkeys(cell) if c is not None]


def apply_filters(clips: pd.DataFrame, filters: IndexFilters, spec: CorpusSpec) -> pd.DataFrame:
    """Keep the clips the filters select; cap cells with a seeded draw."""
    keep = np.ones(len(clips), dtype=bool)
    for column, values in filters.keep.items():
        keep &= clips[column].isin(list(values)).to_numpy()
    out = clips[keep]
    if filters.max_per_cell is not None:
        order = np.random.default_rng(filters.seed).permutation(len(out))
        out = out.iloc[order].groupby(cell_columns(spec), sort=False, dropna=False).head(
            filters.max_per_cell)
    return out.sort_values("clip_id").reset_index(drop=True)


def build_index(corpus: "Corpus", root: str | Path, filters: IndexFilters | None = None,
                progress: bool = True, min_duration_s: float = MIN_DURATION_S) -> IndexResult:
    """Scan ``root``, then filter: the study's clips and every rejected file.

    Raises :class:`NoValidClipsError` naming the folder when no clip is left.
    """
    filters = filters or IndexFilters.from_config({}, corpus.spec)
    clips, rejected = scan(corpus, root, progress=progress, min_duration_s=min_duration_s)
    selected = apply_filters(clips, filters, corpus.spec)
    if selected.empty:
        why = (f"{len(clips)} valid clip(s) found but none passed dataset.filters" if len(clips)
               else f"no valid {corpus.spec.name} audio file found ({len(rejected)} rejected); "
                    f"expected {corpus.layout}")
        raise NoValidClipsError(f"dataset.root {root}: {why}")
    notes = [f"{len(clips)} valid, {len(rejected)} rejected, "
             f"{len(selected)} selected by dataset.filters"]
    for column in [SPEAKER, *corpus.spec.factor_names]:
        counts = selected[column].value_counts(dropna=False)
        try:
            counts = counts.sort_index()
        except TypeError:  # values of mixed types
            pass
        notes.append(f"{column}: {len(counts)} value(s), "
                     + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return IndexResult(clips=selected, rejected=rejected, valid_before_filters=len(clips), notes=notes)


def iter_reasons(rejected: pd.DataFrame) -> Iterable[str]:
    """Human-readable lines for a log: ``path: reason``."""
    for row in rejected.itertuples(index=False):
        yield f"{row.path}: {row.reason}"


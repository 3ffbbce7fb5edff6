"""Any corpus without code: a CSV or TSV that lists the clips, and a design in the config.

For a corpus of one's own recordings, or one whose names carry no metadata.
The config declares it (``dataset.manifest``)::

    dataset:
      name: manifest
      root: /data/my-corpus             # audio paths in the table are relative to this
      manifest:
        file: clips.tsv                 # relative to root, or absolute; .tsv = tab-separated
        path_column: path               # default path
        speaker_column: talker          # default speaker
        clip_id_column: null            # default: the path without its suffix
        factors:                        # column -> ordered levels and how it varies
          mood: {levels: [relaxed, tense], varies: within}
          sex: {levels: [f, m], varies: between}
          loudness: {levels: [soft, loud], varies: within}
        target: mood                    # levels that get their top units
        group: sex                      # question 4 (null: not asked)
        graded: {factor: loudness, low: soft, high: loud}   # question 5 (null: not asked)
        extra_columns: [age]            # other columns to keep in clips.parquet

Each row becomes a clip, or a rejected file with the reason: a path that
does not exist or leaves dataset.root, a level the design does not
declare, no speaker. Levels
that are numbers in the table match numbers in the design.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterator

import pandas as pd

from speechneurons.datasets.spec import SPEAKER, CorpusSpec, Factor

LAYOUT = "the rows of dataset.manifest.file, each naming an audio file under dataset.root"
#: columns of the clips table the manifest cannot bring in as extra columns
_RESERVED = {"clip_id", "path", SPEAKER, "sample_rate", "channels", "num_frames", "duration_s"}


def make_spec(options: dict) -> CorpusSpec:
    """The design ``dataset.manifest`` declares; ValueError names the key that is wrong."""
    if not options.get("factors"):
        raise ValueError("dataset.manifest.factors: declare at least one factor "
                         "(column: {levels: [...], varies: within|between})")
    factors = []
    for name, factor in options["factors"].items():
        if name in _RESERVED or name in options.get("extra_columns", ()):
            raise ValueError(f"dataset.manifest.factors.{name}: {name!r} is a column the index "
                             "writes itself, or an extra column too; rename the factor")
        try:
            factors.append(Factor(name, tuple(factor["levels"]), factor["varies"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"dataset.manifest.factors.{name}: {err}") from err
    graded = options.get("graded")
    try:
        return CorpusSpec(
            name="manifest", factors=tuple(factors), target=options.get("target", ""),
            group=options.get("group"),
            graded=(graded["factor"], graded["low"], graded["high"]) if graded else None,
            extra_columns=tuple(options.get("extra_columns", ())),
        )
    except (KeyError, ValueError) as err:
        raise ValueError(f"dataset.manifest: {err}") from err


def _table_path(root: Path, options: dict) -> Path:
    path = Path(options["file"])
    return path if path.is_absolute() else root / path


def _separator(path: Path) -> str:
    """Tab for .tsv and .tab tables, else comma."""
    return "\t" if path.suffix.lower() in (".tsv", ".tab") else ","


def _needed_columns(options: dict) -> list[str]:
    return [options.get("path_column", "path"), options.get("speaker_column", "speaker"),
            *options["factors"], *options.get("extra_columns", ())]


def check_root(root: Path, options: dict) -> list[str]:
    """What is wrong with the table under ``root`` that the design needs, read from its header
    alone (before any job): a missing file, or columns the design names that it lacks. Nothing
    when ``root`` is not there (a plan made where the data are not mounted)."""
    if not Path(root).is_dir():
        return []
    path = _table_path(Path(root), options)
    if not path.is_file():
        return [f"dataset.manifest.file: {path} is not a file"]
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        header = next(csv.reader(f, delimiter=_separator(path)), [])
    missing = [c for c in _needed_columns(options) if c not in header]
    if missing:
        return [f"dataset.manifest.file {path}: no column(s) {missing}, which dataset.manifest "
                f"names (path_column, speaker_column, factors, extra_columns); its header is {header}"]
    return []


def read_table(root: Path, options: dict) -> pd.DataFrame:
    """The manifest as strings, numbers where a column is all numbers; errors name the file."""
    path = _table_path(root, options)
    if not path.is_file():
        raise FileNotFoundError(f"dataset.manifest.file: {path} is not a file")
    table = pd.read_csv(path, sep=_separator(path), dtype=str, keep_default_na=False)
    missing = [c for c in _needed_columns(options) if c not in table.columns]
    if missing:
        raise ValueError(f"dataset.manifest.file {path}: no column(s) {missing}; "
                         f"it has {list(table.columns)}")
    return table


def _level(text: str, levels: tuple):
    """The declared level written as ``text`` in the table (levels may be numbers)."""
    lookup = {str(level): level for level in levels}
    if text not in lookup:
        raise ValueError(f"{text!r} is not a declared level ({', '.join(lookup)})")
    return lookup[text]


def describe(root: Path, options: dict) -> Iterator[tuple[str, dict | str]]:
    """Per row of the manifest: (path relative to root, metadata or why the row is rejected)."""
    spec = make_spec(options)
    table = read_table(root, options)
    path_column = options.get("path_column", "path")
    speaker_column = options.get("speaker_column", "speaker")
    id_column = options.get("clip_id_column")
    for number, row in enumerate(table.to_dict("records"), start=2):
        rel = row[path_column]
        where = f"manifest line {number}"
        if Path(rel).is_absolute() or os.path.normpath(rel).split(os.sep)[0] == "..":
            yield rel, (f"{where}: {rel} is outside dataset.root; paths in the manifest are relative "
                        "to dataset.root and stay inside it")
            continue
        if not (root / rel).is_file():
            yield rel, f"{where}: no file {rel} under dataset.root"
            continue
        if not row[speaker_column].strip():
            yield rel, f"{where}: no speaker in column {speaker_column}"
            continue
        found = {SPEAKER: row[speaker_column].strip(), **{c: row[c] for c in spec.extra_columns}}
        # the path without its suffix unless a column gives ids: stems may repeat across folders
        found["clip_id"] = row[id_column] if id_column else Path(rel).with_suffix("").as_posix()
        try:
            for factor in spec.factors:
                found[factor.name] = _level(row[factor.name].strip(), factor.levels)
        except ValueError as err:
            yield rel, f"{where}: {factor.name} {err}"
            continue
        yield rel, found

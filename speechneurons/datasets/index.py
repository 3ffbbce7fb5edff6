"""The index of any corpus: scan a root into clips and rejected files, then filter.

A corpus module yields, per file it recognises, the file's path relative to
the root and either its metadata (speaker, each factor, extra columns) or
the reason the name is not valid. This module does the rest for every
corpus: reads each audio header and decodes the file once, rejects short,
undecodable and duplicate clips with a reason, applies ``dataset.filters``,
and caps cells. One bad file never stops the scan.
"""

from __future__ import annotations

import difflib
import errno
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from speechneurons.audio import AudioError, read_header_and_check
from speechneurons.datasets.spec import SPEAKER, CorpusSpec, nearest
from speechneurons.shards import shard_of

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

#: The longest clip the index accepts by default (``dataset.max_duration_s``). The model's
#: convolutional front end and attention hold the whole clip: a 3-hour file needs some 13 GB in
#: the front end of even the tiny test model, and one such file would kill the whole job. The
#: emotional-speech corpora here hold clips of 1-10 s.
MAX_DURATION_S = 30.0

AUDIO_COLUMNS = ["sample_rate", "channels", "num_frames", "duration_s", "audio_flags"]
REJECTED_COLUMNS = ["path", "reason"]


def clip_columns(spec: CorpusSpec) -> list[str]:
    """Columns of ``clips.parquet`` in order (the contract later stages read)."""
    return ["clip_id", "path", *spec.columns, *AUDIO_COLUMNS]


@dataclass(frozen=True)
class Entry:
    """One thing under a corpus root that is not a folder to descend into.

    ``rel``: its path relative to the root (POSIX); ``problem``: None for a
    regular file (or a link to one), else why it can be no clip.
    """

    rel: str
    problem: str | None = None


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def inventory(root: Path) -> list[Entry]:
    """Every entry under ``root`` except the folders themselves, sorted by path.

    Links are followed to their target: a link to a file is that file, a
    link to a folder is scanned once (a folder reached twice, as in a link
    loop, is an entry with that problem). Dangling links, links that loop,
    FIFOs, sockets, devices, unreadable folders and folders named like audio
    (``x.wav/``) are entries with their problem, never silently skipped. A name
    that is not valid UTF-8 (a file copied from an old Latin-1 system) is an
    entry shown with its bad bytes escaped (:func:`printable_name`), asking for
    a rename; a folder so named is not descended into.
    """
    root = Path(root)
    entries: list[Entry] = []
    seen = {os.path.realpath(root)}
    todo = [root]
    while todo:
        folder = todo.pop()
        try:
            children = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as err:
            entries.append(Entry(folder.relative_to(root).as_posix(),
                                 f"unreadable folder: {err.strerror}"))
            continue
        for child in children:
            path = Path(child.path)
            rel = path.relative_to(root).as_posix()
            if not is_utf8(child.name):
                kind = "folder" if child.is_dir() else "file"
                entries.append(Entry(printable_name(rel), (
                    f"the {kind} name is not valid UTF-8 (bad bytes shown as \\x..): rename it, e.g. with "
                    "convmv -f latin1 -t utf-8" + ("; nothing in the folder was read" if kind == "folder" else ""))))
                continue
            try:
                mode = os.stat(path).st_mode  # follows links
            except OSError as err:
                if child.is_symlink():
                    why = ("a symbolic link that loops" if err.errno == errno.ELOOP
                           else f"a dangling symbolic link (to {os.readlink(path)})")
                else:
                    why = f"cannot stat: {err.strerror}"
                entries.append(Entry(rel, why))
                continue
            if stat.S_ISDIR(mode):
                if path.suffix.lower() in AUDIO_SUFFIXES:
                    entries.append(Entry(rel, "a folder named like an audio file"))
                real = os.path.realpath(path)
                if real in seen:
                    entries.append(Entry(rel, f"a link to a folder already scanned ({real}): a loop "
                                              "or a second copy"))
                    continue
                seen.add(real)
                todo.append(path)
            elif stat.S_ISREG(mode):
                entries.append(Entry(rel))
            else:
                entries.append(Entry(rel, _kind(mode)))
    return sorted(entries, key=lambda e: e.rel)


def is_utf8(name: str) -> bool:
    """Whether a name from the file system decodes as UTF-8 (Python keeps undecodable bytes of a
    name as lone surrogates, which no table or page can hold)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_name(name: str) -> str:
    """``name`` with every byte that is not UTF-8 written as ``\\xNN``: a string a table holds."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def audio_files(root: Path, suffixes: set[str] = AUDIO_SUFFIXES) -> list[Path]:
    """Every regular file under ``root`` (links followed) whose suffix is one of ``suffixes``, sorted."""
    return [root / e.rel for e in inventory(root)
            if e.problem is None and Path(e.rel).suffix.lower() in suffixes]


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


def missing_folder_hint(root: Path) -> str:
    """Where a folder that is not there might be: the nearest folder above it that exists, and the
    closest name among that folder's subfolders ('' when nothing is close)."""
    root = Path(os.path.abspath(root))
    parent = root
    while not parent.is_dir() and parent != parent.parent:
        parent = parent.parent
    missing = root.relative_to(parent).parts[0] if root != parent else ""
    try:
        folders = sorted(e.name for e in os.scandir(parent) if e.is_dir())
    except OSError:
        folders = []
    close = difflib.get_close_matches(missing, folders, n=1, cutoff=0.6)
    where = f"; the nearest folder that exists is {parent}"
    return where + (f", which holds {parent / close[0]} (did you mean that?)" if close else "")


def root_errors(corpus: "Corpus", root: str | Path, filters: IndexFilters) -> tuple[list[str], int]:
    """What stops a study before any job, found from the names under ``root`` (no audio read):
    a root that is not a readable folder, one holding no valid clip of the corpus, or filters that
    keep none of its clips. Returns (messages, the speakers of the named clips the filters keep)."""
    root = Path(root)
    if not root.exists():
        return [f"dataset.root: {root} does not exist{missing_folder_hint(root)}. Set dataset.root in the config to "
                f"the folder of corpus {corpus.spec.name} ({corpus.layout}); "
                "if the data are on a disk that is not mounted, mount it first"], 0
    if not root.is_dir():
        return [f"dataset.root: {root} is a file, not a folder; give the folder of corpus "
                f"{corpus.spec.name} ({corpus.layout})"], 0
    if not os.access(root, os.R_OK | os.X_OK):
        return [f"dataset.root: {root} cannot be read by this user (permissions); fix them or give "
                "another folder"], 0
    described = list(corpus.describe(root))
    named = [found for _, found in described if not isinstance(found, str)]
    if not named:
        reasons = sorted({found for _, found in described if isinstance(found, str)})
        seen = f"; {len(described)} file(s) with other names, e.g. {reasons[0]}" if reasons else "; no audio file"
        return [f"dataset.root: {root} holds no clip of corpus {corpus.spec.name}, which expects "
                f"{corpus.layout}{seen}. Is dataset.root (or dataset.name) the right one?"], 0
    metadata = pd.DataFrame(named)
    kept = keep_selected(metadata, IndexFilters(keep={c: v for c, v in filters.keep.items() if c in metadata}))
    if kept.empty:
        return [f"dataset.filters: {filters.keep} keep none of the {len(metadata)} clip(s) named under "
                f"{root}; widen or remove them"], 0
    return [], int(kept[SPEAKER].nunique()) if SPEAKER in kept else 0


class NoValidClipsError(RuntimeError):
    """Raised when a scan leaves no clip to study."""


@dataclass
class IndexResult:
    """What :func:`build_index` found: the study's clips and the rejected files."""

    clips: pd.DataFrame
    rejected: pd.DataFrame
    valid_before_filters: int = 0
    notes: list[str] = field(default_factory=list)


def _unclaimed_reason(entry: Entry, corpus: "Corpus") -> str:
    """Why an entry under the root that the corpus did not describe is no clip."""
    if entry.problem:
        return entry.problem
    suffix = Path(entry.rel).suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        return f"not audio (suffix {suffix or 'none'!r}; audio is {', '.join(sorted(AUDIO_SUFFIXES))})"
    return f"not part of corpus {corpus.spec.name}: expected {corpus.layout}"


def scan(corpus: "Corpus", root: str | Path, progress: bool = True,
         min_duration_s: float = MIN_DURATION_S, max_duration_s: float = MAX_DURATION_S,
         shard: tuple[int, int] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check every file under ``root``: (valid clips, rejected files), so that every entry under
    the root is one or the other.

    The corpus describes the files it recognises (a clip's metadata or why
    its name or row is invalid); each described file is decoded once and
    rejected when undecodable or truncated, shorter than ``min_duration_s``
    or longer than ``max_duration_s`` seconds, or a duplicate clip_id (of a
    file whose path sorts earlier). Every
    other entry (:func:`inventory`: odd files, links, other suffixes) is a
    rejected row with its reason. Audio that decodes but may mislead is kept
    with its ``audio_flags``. ``shard=(k, n)`` checks only the entries of
    shard k of n (:func:`speechneurons.shards.shard_of` of each path; files
    that share a stem, and so a default clip_id, share a shard). Raises
    FileNotFoundError naming ``root`` when it is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset.root: {root} is not a folder")
    spec = corpus.spec
    rows: list[dict] = []
    rejected: list[dict] = []
    seen: dict[str, str] = {}
    entries = list(corpus.describe(root))
    described = {os.path.normpath(rel) for rel, _ in entries}
    if shard is not None:
        entries = [(rel, found) for rel, found in entries if shard_of(rel, shard[1]) == shard[0]]
    entries.sort(key=lambda entry: entry[0])  # the first of a duplicate clip_id: the first path
    for entry in inventory(root):
        if shard is not None and shard_of(entry.rel, shard[1]) != shard[0]:
            continue
        if os.path.normpath(entry.rel) not in described:
            rejected.append({"path": entry.rel, "reason": _unclaimed_reason(entry, corpus)})
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
        if header.duration_s > max_duration_s:
            rejected.append({"path": rel, "reason": (
                f"too long: {header.duration_s:.1f} s > dataset.max_duration_s = {max_duration_s} s "
                "(the model holds the whole clip in memory); cut it into shorter clips, or raise "
                "dataset.max_duration_s if the machine has the memory")})
            continue
        clip_id = str(found.get("clip_id") or Path(rel).stem)
        if clip_id in seen:
            rejected.append({"path": rel, "reason": f"duplicate clip_id, first seen at {seen[clip_id]}"})
            continue
        seen[clip_id] = rel
        rows.append({**found, "clip_id": clip_id, "path": rel, "sample_rate": header.sample_rate,
                     "channels": header.channels, "num_frames": header.num_frames,
                     "duration_s": header.duration_s, "audio_flags": ",".join(header.flags)})
    clips = pd.DataFrame(rows, columns=clip_columns(spec))
    clips = clips.astype({"sample_rate": "int64", "channels": "int64", "num_frames": "int64",
                          "duration_s": "float64", "audio_flags": "str"})
    rejected = pd.DataFrame(rejected, columns=REJECTED_COLUMNS)
    return clips, rejected.sort_values("path", kind="stable", ignore_index=True)


def flag_notes(clips: pd.DataFrame) -> list[str]:
    """One note per audio flag the clips carry: how many, kept, and where to look."""
    flags = clips["audio_flags"].str.split(",").explode()
    counts = flags[flags.astype(bool)].value_counts().sort_index()
    return [f"audio: {n} clip(s) flagged {flag} (kept; see the audio_flags column of clips.parquet)"
            for flag, n in counts.items()]


def cell_columns(spec: CorpusSpec) -> list[str]:
    """The cell ``max_per_cell`` caps: the target, group and graded factors."""
    cell = [spec.target, spec.group, spec.graded[0] if spec.graded else None]
    return [c for c in dict.fromkeys(cell) if c is not None]


def keep_selected(clips: pd.DataFrame, filters: IndexFilters) -> pd.DataFrame:
    """The clips whose values ``filters.keep`` selects (a choice per clip)."""
    keep = np.ones(len(clips), dtype=bool)
    for column, values in filters.keep.items():
        keep &= clips[column].isin(list(values)).to_numpy()
    return clips[keep]


def apply_filters(clips: pd.DataFrame, filters: IndexFilters, spec: CorpusSpec) -> pd.DataFrame:
    """Keep the clips the filters select; cap cells with a seeded draw (over the clips in
    clip_id order, so that the draw does not depend on the order the files were found)."""
    out = keep_selected(clips, filters).sort_values("clip_id", kind="stable")
    if filters.max_per_cell is not None:
        order = np.random.default_rng(filters.seed).permutation(len(out))
        out = out.iloc[order].groupby(cell_columns(spec), sort=False, dropna=False).head(
            filters.max_per_cell)
    return out.sort_values("clip_id").reset_index(drop=True)


@dataclass
class IndexShard:
    """One shard's part of the index: its valid clips that ``dataset.filters.keep`` selects, its
    rejected entries, and how many valid clips it had before the filters."""

    clips: pd.DataFrame
    rejected: pd.DataFrame
    valid: int


def index_shard(corpus: "Corpus", root: str | Path, filters: IndexFilters, shard: int = 0,
                num_shards: int = 1, progress: bool = True, min_duration_s: float = MIN_DURATION_S,
                max_duration_s: float = MAX_DURATION_S) -> IndexShard:
    """:func:`scan` shard ``shard`` of ``num_shards`` and keep what the per-clip filters select.

    A shard's part depends on its own files only (and on what every shard
    reads: the corpus's manifest or demographics, the settings), so the
    workflow indexes each shard in its own job and a changed file reruns one.
    """
    clips, rejected = scan(corpus, root, progress=progress, min_duration_s=min_duration_s,
                           max_duration_s=max_duration_s, shard=(shard, num_shards))
    kept = keep_selected(clips, filters).sort_values("clip_id", kind="stable").reset_index(drop=True)
    return IndexShard(clips=kept, rejected=rejected, valid=len(clips))


def gather_index(parts: Sequence[IndexShard], corpus: "Corpus", root: str | Path,
                 filters: IndexFilters) -> IndexResult:
    """The study's index from every shard's part: clip_ids unique across shards (the later path
    of a pair is rejected), cells capped (``max_per_cell``), and the notes.

    Raises :class:`NoValidClipsError` naming the folder when no clip is left.
    """
    spec = corpus.spec
    # an empty part's columns have no dtype of their own: they must not decide the table's
    clips = pd.concat([part.clips for part in parts if len(part.clips)] or [parts[0].clips],
                      ignore_index=True).sort_values("path", kind="stable")
    rejected = pd.concat([part.rejected for part in parts if len(part.rejected)] or [parts[0].rejected],
                         ignore_index=True)
    first = clips.groupby("clip_id", sort=False)["path"].transform("first")
    twice = (clips["path"] != first).to_numpy()
    rejected = pd.concat([rejected, pd.DataFrame({
        "path": clips.loc[twice, "path"], "reason": "duplicate clip_id, first seen at " + first[twice]})],
        ignore_index=True).sort_values("path", kind="stable", ignore_index=True)
    valid = sum(part.valid for part in parts) - int(twice.sum())
    selected = apply_filters(clips[~twice], filters, spec)
    if selected.empty:
        why = (f"{valid} valid clip(s) found but none passed dataset.filters" if valid
               else f"no valid {spec.name} audio file found ({len(rejected)} rejected); "
                    f"expected {corpus.layout}")
        raise NoValidClipsError(f"dataset.root {root}: {why}")
    notes = [f"{valid} valid, {len(rejected)} rejected, {len(selected)} selected by dataset.filters"]
    for column in [SPEAKER, *spec.factor_names]:
        counts = selected[column].value_counts(dropna=False)
        try:
            counts = counts.sort_index()
        except TypeError:  # values of mixed types
            pass
        notes.append(f"{column}: {len(counts)} value(s), "
                     + ", ".join(f"{k} {v}" for k, v in counts.items()))
    notes += flag_notes(selected)
    return IndexResult(clips=selected, rejected=rejected, valid_before_filters=valid, notes=notes)


def build_index(corpus: "Corpus", root: str | Path, filters: IndexFilters | None = None,
                progress: bool = True, min_duration_s: float = MIN_DURATION_S,
                max_duration_s: float = MAX_DURATION_S) -> IndexResult:
    """Scan ``root``, then filter: the study's clips and every rejected file (the workflow's
    index in one call: one shard, gathered).

    Raises :class:`NoValidClipsError` naming the folder when no clip is left.
    """
    filters = filters or IndexFilters.from_config({}, corpus.spec)
    part = index_shard(corpus, root, filters, progress=progress, min_duration_s=min_duration_s,
                       max_duration_s=max_duration_s)
    return gather_index([part], corpus, root, filters)


def iter_reasons(rejected: pd.DataFrame) -> Iterable[str]:
    """Human-readable lines for a log: ``path: reason``."""
    for row in rejected.itertuples(index=False):
        yield f"{row.path}: {row.reason}"


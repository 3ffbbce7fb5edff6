"""What the index and each shard's jobs depend on in the data: digests computed before any job.

The Snakefile passes ``index`` as a param of the index job (Snakemake reruns
a job whose params changed), so an added, removed or replaced file under
``dataset.root`` reruns the index. ``shards[k]`` covers what shard k's clips
depend on: the per-shard jobs (activations, ablation) carry it as a param
and read the index as ``ancient()``, so only the changed file's shard reruns
them; the jobs that read the index as a whole follow its output. A file's
state is its path, size and modification time (nanoseconds); reading the
bytes of every file at each plan would cost minutes on a full corpus.
``touch FILE`` forces a rescan.

Files without an audio suffix (a manifest, a demographics table) and odd
entries carry metadata or reasons for every clip, so they enter every
shard's digest; so does every index setting, and with
``dataset.filters.max_per_cell`` (a draw over the whole corpus) the whole
tree does. Pure Python: the Snakefile imports it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from speechneurons.datasets.index import AUDIO_SUFFIXES, inventory
from speechneurons.shards import shard_of


@dataclass(frozen=True)
class DataState:
    """``index``: digest of the whole tree and the index settings; ``shards[k]``: of what the
    clips of shard k depend on."""

    index: str
    shards: tuple[str, ...]


def _digest(items) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_state(path: Path) -> list:
    try:
        found = os.stat(path)
    except OSError as err:
        return [err.strerror]
    return [found.st_size, found.st_mtime_ns]


def data_state(root: str | Path, settings: dict, num_shards: int, extra_files: tuple = ()
               ) -> DataState:
    """The digests of the tree under ``root`` for ``num_shards`` shards.

    settings: everything else that decides the index (corpus, filters,
    durations, its code hash); extra_files: files outside the root the index
    reads (an absolute manifest path).
    """
    root = Path(root)
    if not root.is_dir():
        missing = _digest(["no folder", str(root), settings])
        return DataState(missing, (missing,) * num_shards)
    common: list = [settings, [(str(f), _file_state(Path(f))) for f in extra_files]]
    per_shard: list[list] = [[] for _ in range(num_shards)]
    for entry in inventory(root):
        state = [entry.rel, entry.problem or _file_state(root / entry.rel)]
        if entry.problem is None and Path(entry.rel).suffix.lower() in AUDIO_SUFFIXES:
            per_shard[shard_of(entry.rel, num_shards)].append(state)
        else:
            common.append(state)
    index = _digest([common, per_shard])
    if (settings.get("filters") or {}).get("max_per_cell"):
        return DataState(index, (index,) * num_shards)
    return DataState(index, tuple(_digest([common, mine]) for mine in per_shard))

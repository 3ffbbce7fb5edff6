"""What each shard of the index depends on in the data: digests computed before any job.

The workflow indexes each shard of the corpus in its own job
(``index_shard``, :func:`speechneurons.datasets.index.index_shard`), which
carries ``shards[k]`` as a param (Snakemake reruns a job whose params
changed): an added, removed or replaced file reruns its own shard's index
job, that shard's activations (and ablation) and every job that reads the
gathered index; the other shards' jobs stay. A file's state is its path,
size and modification time (nanoseconds); reading the bytes of every file
at each plan would cost minutes on a full corpus. ``touch FILE`` forces a
rescan of its shard.

Files without an audio suffix (a manifest, a demographics table) and odd
entries may carry metadata or reasons for every clip, so they enter every
shard's digest; so does every index setting. Pure Python: the Snakefile
imports it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from speechneurons.datasets.index import AUDIO_SUFFIXES, inventory
from speechneurons.shards import shard_of


def _digest(items) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_state(path: Path) -> list:
    try:
        found = os.stat(path)
    except OSError as err:
        return [err.strerror]
    return [found.st_size, found.st_mtime_ns]


def shard_digests(root: str | Path, settings: dict, num_shards: int, extra_files: tuple = ()
                  ) -> tuple[str, ...]:
    """The digest of what shard k of ``num_shards`` depends on under ``root``, for every k.

    settings: everything else that decides the index (corpus, filters,
    durations, its code hash); extra_files: files outside the root the index
    reads (an absolute manifest path).
    """
    root = Path(root)
    if not root.is_dir():
        return (_digest(["no folder", str(root), settings]),) * num_shards
    common: list = [settings, [(str(f), _file_state(Path(f))) for f in extra_files]]
    per_shard: list[list] = [[] for _ in range(num_shards)]
    for entry in inventory(root):
        state = [entry.rel, entry.problem or _file_state(root / entry.rel)]
        if entry.problem is None and Path(entry.rel).suffix.lower() in AUDIO_SUFFIXES:
            per_shard[shard_of(entry.rel, num_shards)].append(state)
        else:
            common.append(state)
    return tuple(_digest([common, mine]) for mine in per_shard)


def shards_stand_alone(filters: dict | None, manifest: dict | None) -> bool:
    """Whether a shard's clips are its index part's clips, so that the shard's jobs can read that
    part: not when a cell cap draws over the whole corpus (``dataset.filters.max_per_cell``) or
    clip ids come from a manifest column (two files of different shards may then share one)."""
    return not (filters or {}).get("max_per_cell") and not (manifest or {}).get("clip_id_column")

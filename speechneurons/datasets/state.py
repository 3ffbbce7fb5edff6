"""What each shard of the index depends on in the data: digests computed before any job.

The workflow indexes each shard of the corpus in its own job
(``index_shard``, :func:`speechneurons.datasets.index.index_shard`), which
carries ``shards[k]`` as a param (Snakemake reruns a job whose params
changed): an added, removed or replaced file reruns its own shard's index
job, that shard's activations (and ablation) and every job that reads the
gathered index; the other shards' jobs stay.

A file's state is the SHA-256 of its bytes, so that ``touch``, a copy that
does not keep times or a second unzip of the corpus reruns nothing, while
changed bytes rerun the file's shard. Reading every byte of a corpus at each
plan would cost minutes, so the hashes are kept in a cache file
(:class:`ContentDigests`, ``results/.content-digests.json`` in the workflow)
by (path, size, modification time, inode): a plan reads only the files that
are new or whose size or time changed since. Deleting the file clears the
cache; the next plan reads every file once.

Files without an audio suffix (a manifest, a demographics table) and odd
entries may carry metadata or reasons for every clip, so they enter every
shard's digest; so does every index setting. Pure Python: the Snakefile
imports it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

from speechneurons.datasets.index import AUDIO_SUFFIXES, inventory
from speechneurons.shards import shard_of


def _digest(items) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()[:16]


#: bytes read at once when hashing a file
_CHUNK = 1 << 20


class ContentDigests:
    """SHA-256 of files' bytes, cached in a JSON file by (path, size, mtime_ns, inode).

    ``path``: the cache file (None: no cache, every file is read). A file
    whose size, modification time or inode differs from the cached entry is
    read again; the cache is rewritten (atomically, by rename) only when a
    file was read, so that concurrent plans (cluster jobs parse the Snakefile
    too) never leave a cut cache, at worst one missing the other's entries.
    A cache that cannot be read is started afresh; a rewrite keeps only the
    files this plan looked at (a deleted file's entry goes).
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._known: dict[str, list] = {}
        self._seen: set[str] = set()
        self._read = 0
        if self.path is not None and self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text())
                self._known = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self._known = {}

    def state(self, path: Path) -> list:
        """[size, sha256 of the bytes] of ``path``, or [why it cannot be read]."""
        try:
            found = os.stat(path)
        except OSError as err:
            return [err.strerror]
        key = os.path.abspath(path)
        self._seen.add(key)
        stamp = [found.st_size, found.st_mtime_ns, found.st_ino]
        cached = self._known.get(key)
        if cached is not None and cached[:3] == stamp:
            return [found.st_size, cached[3]]
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
        except OSError as err:
            return [err.strerror]
        self._known[key] = [*stamp, digest.hexdigest()]
        self._read += 1
        if self._read == 200:  # a first plan of a large corpus: say why it takes a while
            print(f"reading the bytes of the corpus's new or changed files to know what changed (kept in "
                  f"{self.path or 'no cache'})...", file=sys.stderr)
        return [found.st_size, self._known[key][3]]

    def save(self) -> None:
        """Write the cache if any file was read since it was loaded."""
        if self.path is None or not self._read:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        umask = os.umask(0)
        os.umask(umask)
        try:
            with os.fdopen(handle, "w") as f:
                json.dump({key: self._known[key] for key in sorted(self._seen) if key in self._known}, f)
            os.chmod(partial, 0o666 & ~umask)  # as any other output, not mkstemp's 0600
            os.replace(partial, self.path)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        self._read = 0


def shard_digests(root: str | Path, settings: dict, num_shards: int, extra_files: tuple = (),
                  cache: str | Path | None = None) -> tuple[str, ...]:
    """The digest of what shard k of ``num_shards`` depends on under ``root``, for every k.

    settings: everything else that decides the index (corpus, filters,
    durations, its code hash); extra_files: files outside the root the index
    reads (an absolute manifest path); cache: the file that keeps the
    content hashes between plans (:class:`ContentDigests`).
    """
    root = Path(root)
    if not root.is_dir():
        return (_digest(["no folder", str(root), settings]),) * num_shards
    digests = ContentDigests(cache)
    common: list = [settings, [(str(f), digests.state(Path(f))) for f in extra_files]]
    per_shard: list[list] = [[] for _ in range(num_shards)]
    for entry in inventory(root):
        state = [entry.rel, entry.problem or digests.state(root / entry.rel)]
        if entry.problem is None and Path(entry.rel).suffix.lower() in AUDIO_SUFFIXES:
            per_shard[shard_of(entry.rel, num_shards)].append(state)
        else:
            common.append(state)
    digests.save()
    return tuple(_digest([common, mine]) for mine in per_shard)


def shards_stand_alone(filters: dict | None, manifest: dict | None) -> bool:
    """Whether a shard's clips are its index part's clips, so that the shard's jobs can read that
    part: not when a cell cap draws over the whole corpus (``dataset.filters.max_per_cell``) or
    clip ids come from a manifest column (two files of different shards may then share one)."""
    return not (filters or {}).get("max_per_cell") and not (manifest or {}).get("clip_id_column")

"""The activation cache, read: pooled statistics per (clip, unit) as [clips, units] blocks.

Plain numpy and pandas (no torch), so that the statistics, probes and figure
jobs that only read the cache start fast; :mod:`speechneurons.activations`
computes it.

Every statistic is per unit, so no job needs the whole [clips, units] matrix
at once. :class:`ActivationCache` streams the shards row group by row group
(memory bounded by a row group, whatever a shard holds) and gives

- :meth:`ActivationCache.matrix`: the matrix of some columns (the units a
  figure or a bootstrap needs), in memory;
- :meth:`ActivationCache.blocks`: every column in blocks of units sized to
  ``compute.memory_gib``: in memory when the matrix fits, else spilled once to
  one file per block in a temporary folder and read back a block at a time.

Both give the same float32 values in the same clip_id order, so a statistic
computed block by block equals the one computed on the whole matrix bit for
bit (tested).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np
import pandas as pd

from speechneurons.integrity import DamagedFileError, damaged_message

log = logging.getLogger(__name__)

#: The pooled statistics of a shard (the value columns of schemas.ACTIVATION_SCHEMA).
STATISTICS = ("mean", "std", "max")
#: the dtype pandas reads a parquet string column as (what the unit tables have always carried)
STRING = pd.Series(["hidden"]).dtype
#: rows of a shard read at once (a few tens of MB whatever the shard's size)
BATCH_ROWS = 1 << 20
#: GiB a job that reads the cache holds beside its blocks: Python with numpy, pandas, scipy and
#: pyarrow, and the clip table (measured: 0.35-0.4 GiB; bench/selectivity_speed.py)
RESERVED_GIB = 0.5


def unit_bounds(n_units: int, width: int | None) -> list[tuple[int, int]]:
    """[start, stop) of each block of ``width`` units (None: one block).

    No block is one unit wide unless there is one unit: numpy sums a
    one-column array in another order than a wider one, and blocks must give
    the bits of the whole matrix.
    """
    if width is None or width >= n_units:
        return [(0, n_units)]
    width = max(int(width), 2)
    bounds = [(start, min(start + width, n_units)) for start in range(0, n_units, width)]
    if bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n_units)]
    return bounds


def block_width(n_clips: int, bytes_per_value: float, memory_gib: float) -> int:
    """Units per block so that a job holding ``bytes_per_value`` bytes per (clip, unit) of a
    block stays within ``memory_gib`` (at least two)."""
    return max(2, int(memory_gib * 2**30 / (max(n_clips, 1) * bytes_per_value)))


class UnitBlocks(Protocol):
    """Activations [clips, units] that a statistic reads a block of units at a time."""

    clip_ids: list[str]
    units: pd.DataFrame  # site, layer, neuron: one row per column

    @property
    def bounds(self) -> list[tuple[int, int]]:
        """[start, stop) of each block."""

    def block(self, i: int) -> np.ndarray:
        """[clips, stop - start] float32, C-contiguous: block i."""

    def columns(self, index: Sequence[int]) -> np.ndarray:
        """[clips, len(index)] float32: the given columns, in that order."""


@dataclass
class ActivationMatrix:
    """Pooled activations as a matrix: values[clip i, unit j]; also :class:`UnitBlocks` (blocks of
    ``width`` units; None: one block, the matrix itself)."""

    clip_ids: list[str]
    units: pd.DataFrame  # site, layer, neuron
    values: np.ndarray  # [clips, units] float32
    width: int | None = None

    @property
    def bounds(self) -> list[tuple[int, int]]:
        return unit_bounds(self.values.shape[1], self.width)

    def block(self, i: int) -> np.ndarray:
        start, stop = self.bounds[i]
        if (start, stop) == (0, self.values.shape[1]):
            return self.values
        return np.ascontiguousarray(self.values[:, start:stop])

    def columns(self, index: Sequence[int]) -> np.ndarray:
        return self.values[:, np.asarray(index, dtype=np.int64)]

    def column(self, site: str, layer: int, neuron: int) -> int:
        """The column of one unit (KeyError naming it when the cache lacks it)."""
        hit = self.units.index[(self.units["site"] == site) & (self.units["layer"] == layer)
                               & (self.units["neuron"] == neuron)]
        if len(hit) == 0:
            raise KeyError(f"unit ({site}, {layer}, {neuron}) is not in the activation cache")
        return int(hit[0])

    def long(self, units: pd.DataFrame) -> pd.DataFrame:
        """One row per (clip, unit) for the given units: clip_id, site, layer, neuron, value."""
        columns = self.units.reset_index().merge(units[["site", "layer", "neuron"]].drop_duplicates(),
                                                 on=["site", "layer", "neuron"])
        n_clips, n_units = len(self.clip_ids), len(columns)
        return pd.DataFrame({
            "clip_id": np.repeat(np.asarray(self.clip_ids, dtype=object), n_units),
            "site": np.tile(columns["site"].to_numpy(), n_clips),
            "layer": np.tile(columns["layer"].to_numpy(), n_clips),
            "neuron": np.tile(columns["neuron"].to_numpy(), n_clips),
            "value": self.values[:, columns["index"].to_numpy()].reshape(-1),
        })


class SpilledBlocks:
    """:class:`UnitBlocks` on disk: block i is one file of [clips, width_i] float32 rows in
    clip_id order, written in one pass over the shards; reading a block reads that file."""

    def __init__(self, clip_ids: list[str], units: pd.DataFrame, bounds: list[tuple[int, int]],
                 folder: Path) -> None:
        self.clip_ids, self.units, self.folder = clip_ids, units, folder
        self._bounds = bounds

    @property
    def bounds(self) -> list[tuple[int, int]]:
        return self._bounds

    def path(self, i: int) -> Path:
        return self.folder / f"block{i:05d}.f32"

    def block(self, i: int) -> np.ndarray:
        start, stop = self._bounds[i]
        values = np.fromfile(self.path(i), dtype=np.float32)
        if values.size != len(self.clip_ids) * (stop - start):
            raise ValueError(f"{self.path(i)}: {values.size} values, expected "
                             f"{len(self.clip_ids)} clips x {stop - start} units (was it changed?)")
        return values.reshape(len(self.clip_ids), stop - start)

    def columns(self, index: Sequence[int]) -> np.ndarray:
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((len(self.clip_ids), len(index)), dtype=np.float32)
        starts = np.array([start for start, _ in self._bounds])
        which = np.searchsorted(starts, index, side="right") - 1
        for i in np.unique(which):
            at = np.flatnonzero(which == i)
            out[:, at] = self.block(int(i))[:, index[at] - self._bounds[i][0]]
        return out


@dataclass
class _Part:
    """Shards that hold the same units of each clip (the activation pass's, or the SAE latents'):
    their columns [offset, offset + width) of the cache's layout."""

    paths: list[Path]
    layout: pd.DataFrame  # site, layer, neuron of one clip's rows, in file order
    offset: int


class ActivationCache:
    """The activation shards of a study, opened for reading one statistic of some sites.

    The shards may come in parts that each hold other units of the same
    clips: the activation pass's shards (hidden, ffn) and the SAE latents'
    shards (sae, written by their own job so that a retrained SAE reruns no
    forward pass). A file's part is the sites of its first clip; the
    cache's units are each part's units in the order the parts first appear
    in ``paths``, and its clips those every part holds (a clip that failed
    in one part's job is left out, with a warning: the failed tables list
    it). Opening reads the clip ids (a dictionary-coded column) and the
    units of the first clip in clip_id order of each part; every clip must
    carry its part's units in the same order (as the cache writes them), and
    a shard that breaks this raises ValueError naming it and the clip. Rows
    of a clip need not be together in a shard. Files without rows (an empty
    shard, the latents of untrained SAEs) add nothing.
    """

    def __init__(self, paths: Sequence[str | Path], statistic: str = "mean",
                 sites: Sequence[str] | None = None) -> None:
        if statistic not in STATISTICS:
            raise ValueError(f"stats.activation: {statistic!r} is not one of {list(STATISTICS)}")
        self.paths = [Path(p) for p in paths]
        self.statistic = statistic
        grouped: dict[tuple[str, ...], tuple[list[Path], list[dict[str, int]]]] = {}
        for path in self.paths:
            counts = _clip_counts(path)
            if not counts:
                continue
            name = next(iter(counts))
            key = tuple(pd.unique(_clip_units(path, name, counts[name])["site"]))
            files, file_counts = grouped.setdefault(key, ([], []))
            files.append(path)
            file_counts.append(counts)
        if not grouped:
            raise ValueError(f"no activations in {list(map(str, self.paths))}")
        clip_sets = []
        self._parts: list[_Part] = []
        offset = 0
        for files, file_counts in grouped.values():
            counts: dict[str, int] = {}
            shard_of: dict[str, int] = {}
            for k, (path, found) in enumerate(zip(files, file_counts)):
                for name, count in found.items():
                    if name in counts:
                        raise ValueError(f"{path}: clip {name} is also in {files[shard_of[name]]}")
                    counts[name], shard_of[name] = count, k
            first = min(counts)
            layout = _clip_units(files[shard_of[first]], first, counts[first])
            for name, count in counts.items():
                if count != len(layout):
                    raise ValueError(f"{files[shard_of[name]]}: clip {name} has other units than the first clip")
            self._parts.append(_Part(files, layout, offset))
            offset += len(layout)
            clip_sets.append(set(counts))
        self.clip_ids = sorted(set.intersection(*clip_sets))
        left_out = set.union(*clip_sets) - set(self.clip_ids)
        if left_out:
            log.warning("activation cache: %d clip(s) lack the units of one part (their job failed; see the "
                        "failed tables) and are left out, e.g. %s", len(left_out), min(left_out))
        if not self.clip_ids:
            raise ValueError(f"no clip has every unit in {list(map(str, self.paths))}")
        self._layout = pd.concat([part.layout for part in self._parts], ignore_index=True)
        width = len(self._layout)
        wanted = np.ones(width, dtype=bool) if sites is None else self._layout["site"].isin(list(sites)).to_numpy()
        if not wanted.any():
            raise ValueError(f"no activations of sites {list(sites or [])} in {list(map(str, self.paths))}")
        self._wanted = np.flatnonzero(wanted)  # columns of the layout this cache reads
        self.units = self._layout.iloc[self._wanted].reset_index(drop=True)

    def matrix(self, columns: Sequence[int] | None = None) -> ActivationMatrix:
        """[clips, units] (or only ``columns``, indices into :attr:`units`) in memory."""
        index = np.arange(len(self.units)) if columns is None else np.asarray(columns, dtype=np.int64)
        values = np.empty((len(self.clip_ids), len(index)), dtype=np.float32)

        def sink(rows: np.ndarray, positions: np.ndarray, block: np.ndarray) -> None:
            values[np.ix_(rows, positions)] = block

        self._stream(index, sink)
        return ActivationMatrix(list(self.clip_ids), self.units.iloc[index].reset_index(drop=True), values)

    @contextmanager
    def blocks(self, bytes_per_value: float, memory_gib: float, reserved_gib: float = RESERVED_GIB,
               folder: str | Path | None = None) -> Iterator[UnitBlocks]:
        """Every unit, in blocks sized so that a job holding ``bytes_per_value`` bytes per (clip,
        unit) of a block, beside ``reserved_gib`` for everything else (the interpreter, its
        libraries, the job's result tables), stays within ``memory_gib``: the matrix in memory
        when all of it fits (one block), else blocks spilled to a temporary folder (in
        ``folder``, else $TMPDIR), deleted on leaving."""
        if memory_gib <= reserved_gib:
            raise ValueError(f"compute.memory_gib = {memory_gib:g} leaves nothing for blocks of activations beside "
                             f"the {reserved_gib:.2f} GiB this job holds otherwise; raise compute.memory_gib")
        width = block_width(len(self.clip_ids), bytes_per_value, memory_gib - reserved_gib)
        if width >= len(self.units):
            yield self.matrix()
            return
        bounds = unit_bounds(len(self.units), width)
        spill = Path(tempfile.mkdtemp(prefix="activation-blocks-", dir=folder))
        try:
            spilled = SpilledBlocks(list(self.clip_ids), self.units, bounds, spill)
            handles = [os.open(spilled.path(i), os.O_WRONLY | os.O_CREAT, 0o600) for i in range(len(bounds))]
            try:
                for handle, (start, stop) in zip(handles, bounds):
                    os.ftruncate(handle, len(self.clip_ids) * (stop - start) * 4)

                def sink(rows: np.ndarray, positions: np.ndarray, block: np.ndarray) -> None:
                    # a part's units are one run of columns [first, last]: in each block, a run of each row
                    first, last = int(positions[0]), int(positions[-1]) + 1
                    for handle, (start, stop) in zip(handles, bounds):
                        low, high = max(start, first), min(stop, last)
                        if low >= high:
                            continue
                        part = np.ascontiguousarray(block[:, low - first:high - first])
                        for row, values in zip(rows, part):
                            os.pwrite(handle, values.tobytes(), (int(row) * (stop - start) + low - start) * 4)

                self._stream(np.arange(len(self.units)), sink, progress=True)
            finally:
                for handle in handles:
                    os.close(handle)
            yield spilled
        finally:
            shutil.rmtree(spill, ignore_errors=True)

    def _stream(self, index: np.ndarray, sink, progress: bool = False) -> None:
        """Read every shard once, calling sink(rows [k], positions [m], values [k, m]) with the rows
        (in clip_id order) of clips whose units of one part are all read, ``positions`` being where
        that part's columns lie in ``index``; ``progress``: a bar over the clips and parts."""
        from tqdm.auto import tqdm

        columns_read = self._wanted[index]  # column of the layout of each position of index
        row_of = {name: i for i, name in enumerate(self.clip_ids)}
        # each part with the positions of index its columns fill (parts no position reads are skipped)
        reads = [(part, np.flatnonzero((columns_read >= part.offset)
                                       & (columns_read < part.offset + len(part.layout)))) for part in self._parts]
        reads = [(part, positions) for part, positions in reads if len(positions)]
        bar = tqdm(total=len(self.clip_ids) * len(reads), desc="activation blocks to $TMPDIR", unit="clip",
                   disable=not progress)
        for part, positions in reads:
            width = len(part.layout)
            column_of = np.full(width, -1, dtype=np.int64)
            column_of[columns_read[positions] - part.offset] = np.arange(len(positions))
            layer = part.layout["layer"].to_numpy()
            neuron = part.layout["neuron"].to_numpy()
            site_names = list(pd.unique(part.layout["site"]))
            site = pd.Categorical(part.layout["site"], categories=site_names).codes
            for path in part.paths:
                self._stream_file(path, row_of, width, column_of, positions, layer, neuron, site_names, site,
                                  sink, bar)
        bar.close()

    def _stream_file(self, path: Path, row_of: dict[str, int], width: int, column_of: np.ndarray,
                     positions: np.ndarray, layer: np.ndarray, neuron: np.ndarray, site_names: list[str],
                     site: np.ndarray, sink, bar) -> None:
        """One shard of a part: sink every clip of the cache as soon as its rows are all read."""
        partial: dict[int, np.ndarray] = {}
        filled = np.zeros(len(self.clip_ids), dtype=np.int64)
        reader = verified(path, read_dictionary=["clip_id", "site"])
        for batch in batches(path, reader, ["clip_id", "site", "layer", "neuron", self.statistic]):
            if batch.num_rows == 0:
                continue
            clip = batch.column("clip_id")
            lookup = np.array([row_of.get(str(n), -1) for n in clip.dictionary.to_pylist()], dtype=np.int64)
            rows = lookup[clip.indices.to_numpy(zero_copy_only=False)]
            kept = np.flatnonzero(rows >= 0)  # rows of clips another part lacks are skipped
            rows = rows[kept]
            if not len(rows):
                continue
            # each row's position among its clip's rows, counting from what earlier batches filled
            order = np.argsort(rows, kind="stable")
            sorted_rows = rows[order]
            starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
            lengths = np.diff(np.r_[starts, len(rows)])
            rank = np.arange(len(rows)) - np.repeat(starts, lengths)
            position = np.empty(len(rows), dtype=np.int64)
            position[order] = filled[sorted_rows] + rank
            site_lookup = np.array([site_names.index(s) if s in site_names else -1
                                    for s in batch.column("site").dictionary.to_pylist()])
            bad = position >= width
            inside = np.minimum(position, width - 1)
            bad |= site_lookup[batch.column("site").indices.to_numpy(zero_copy_only=False)[kept]] != site[inside]
            bad |= batch.column("layer").to_numpy()[kept] != layer[inside]
            bad |= batch.column("neuron").to_numpy()[kept] != neuron[inside]
            if bad.any():
                name = self.clip_ids[int(rows[np.flatnonzero(bad)[0]])]
                raise ValueError(f"{path}: clip {name} has other units than the first clip")
            values = batch.column(self.statistic).to_numpy(zero_copy_only=False)[kept]
            columns = column_of[position]
            done = []
            for start, length in zip(starts, lengths):
                row = int(sorted_rows[start])
                these = order[start:start + length]
                buffer = partial.get(row)
                if buffer is None:
                    buffer = partial[row] = np.empty(len(positions), dtype=np.float32)
                keep = these[columns[these] >= 0]
                buffer[columns[keep]] = values[keep]
                filled[row] += length
                if filled[row] == width:
                    done.append(row)
            if done:
                sink(np.array(done), positions, np.stack([partial.pop(row) for row in done]))
                bar.update(len(done))
        if partial:
            raise ValueError(f"{path}: changed while it was read (clip {self.clip_ids[min(partial)]} "
                             "lost rows)")


def unit_columns(units: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """[len(rows)] the column of each row's (site, layer, neuron) among ``units`` (KeyError naming
    the first unit the cache lacks)."""
    def key(frame: pd.DataFrame) -> pd.MultiIndex:
        return pd.MultiIndex.from_arrays([frame["site"].astype(str).to_numpy(), frame["layer"].to_numpy(np.int64),
                                          frame["neuron"].to_numpy(np.int64)])

    index = key(units).get_indexer(key(rows))
    if (index < 0).any():
        site, layer, neuron = key(rows)[int(np.flatnonzero(index < 0)[0])]
        raise KeyError(f"unit ({site}, {layer}, {neuron}) is not in the activation cache")
    return index


def units_matrix(paths: Sequence[str | Path], statistic: str, units: pd.DataFrame) -> ActivationMatrix:
    """The [clips, units] matrix of just these units (site, layer, neuron; duplicates once), read
    in one pass: what a figure, page or table of a few units needs."""
    cache = ActivationCache(paths, statistic, sites=sorted(units["site"].astype(str).unique()) or None)
    wanted = units[["site", "layer", "neuron"]].drop_duplicates()
    return cache.matrix(np.sort(unit_columns(cache.units, wanted)))


def activation_matrix(paths: Sequence[str | Path], statistic: str = "mean",
                      sites: Sequence[str] | None = None) -> ActivationMatrix:
    """Every unit of ``sites`` (None: all) as one [clips, units] matrix in clip_id order, whatever
    the shards: :meth:`ActivationCache.matrix`. For a few units, open an :class:`ActivationCache`
    and ask for their columns; for all of a large cache, :meth:`ActivationCache.blocks`."""
    return ActivationCache(paths, statistic, sites).matrix()


def verified(path: Path, read_dictionary: Sequence[str] = ()):
    """A shard opened for streaming with each page's checksum verified (without pre-buffering:
    with it, the reader keeps every row group it has read until the file is closed,
    apache/arrow#37139, and memory grows with the shard); damage names the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path, read_dictionary=list(read_dictionary) or None, pre_buffer=False,
                              page_checksum_verification=True)
    except (OSError, pa.ArrowException) as err:
        raise DamagedFileError(damaged_message(path, f"{type(err).__name__}: {err}")) from err


def batches(path: Path, reader, columns: list[str]) -> Iterator:
    """The shard's record batches of ``columns``, :data:`BATCH_ROWS` at a time; a page whose
    checksum or encoding is wrong raises :class:`DamagedFileError` naming the file."""
    import pyarrow as pa

    try:
        yield from reader.iter_batches(batch_size=BATCH_ROWS, columns=columns)
    except (OSError, pa.ArrowException) as err:
        raise DamagedFileError(damaged_message(path, f"{type(err).__name__}: {err}")) from err


def _clip_counts(path: Path) -> dict[str, int]:
    """Rows per clip id in one shard (the dictionary-coded column, read row group by row group)."""
    counts: dict[str, int] = {}
    for batch in batches(path, verified(path, read_dictionary=["clip_id"]), ["clip_id"]):
        clip = batch.column("clip_id")
        if len(clip) == 0:
            continue
        names = clip.dictionary.to_pylist()
        for code, count in enumerate(np.bincount(clip.indices.to_numpy(zero_copy_only=False),
                                                 minlength=len(names))):
            if count:
                counts[str(names[code])] = counts.get(str(names[code]), 0) + int(count)
    return counts


def _clip_units(path: Path, clip_id: str, count: int) -> pd.DataFrame:
    """site, layer, neuron of one clip's ``count`` rows of a shard, in file order."""
    import pyarrow.compute as pc

    parts = []
    for batch in batches(path, verified(path), ["clip_id", "site", "layer", "neuron"]):
        mine = batch.filter(pc.equal(batch.column("clip_id"), clip_id))
        if mine.num_rows:
            parts.append(mine.to_pandas()[["site", "layer", "neuron"]])
            count -= mine.num_rows
        if count <= 0:
            break
    units = pd.concat(parts, ignore_index=True)
    return pd.DataFrame({"site": units["site"].astype(str).astype(STRING), "layer": units["layer"].to_numpy(),
                         "neuron": units["neuron"].to_numpy()})

"""Blocks of units: every reader of the activation cache gives the bits of the whole matrix.

The statistics are per unit, so a study reads its cache a block of units at
a time (issue 22); these tests run each rewritten path on the whole matrix,
on blocks held in memory and on blocks spilled to disk from parquet shards,
and ask for equal tables (``check_exact``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speechneurons.cache import STRING, ActivationCache, ActivationMatrix, block_width, unit_bounds
from speechneurons.datasets.ravdess import SPEC, full_design
from speechneurons.probes import ProbeSettings, layer_probes
from speechneurons.reliability.bootstrap import BootstrapSettings, speaker_bootstrap
from speechneurons.stats.selection import SelectionSettings, select_units
from speechneurons.stats.selectivity import StatsSettings, selectivity


def write_shards(folder, matrix: ActivationMatrix, shards: int = 3) -> list:
    """The matrix as cache shards (one row per clip and unit, clips dealt round-robin, rows of a
    shard's clips in a shuffled clip order), with several row groups per shard."""
    paths = []
    order = np.random.default_rng(1).permutation(len(matrix.clip_ids))
    for shard in range(shards):
        rows = order[shard::shards]
        n_units = len(matrix.units)
        table = pd.DataFrame({
            "clip_id": np.repeat(np.asarray(matrix.clip_ids, dtype=object)[rows], n_units),
            "site": np.tile(matrix.units["site"].to_numpy(), len(rows)),
            "layer": np.tile(matrix.units["layer"].to_numpy(), len(rows)),
            "neuron": np.tile(matrix.units["neuron"].to_numpy(), len(rows)),
            "mean": matrix.values[rows].reshape(-1), "std": np.float32(1), "max": np.float32(2)})
        paths.append(folder / f"shard{shard}.parquet")
        table.to_parquet(paths[-1], row_group_size=5000)
    return paths


@pytest.fixture(scope="module")
def study():
    """RAVDESS's 1,440-clip design with 30 % of clips dropped, gender unknown for two actors, 40
    planted emotion units among 200 with actor intercepts and slopes: every path of selectivity
    (replication selects units, mixed models are fitted, a factor has unknown clips); rows in
    clip_id order, as the cache gives them."""
    meta = full_design()
    rng = np.random.default_rng(3)
    meta = meta[rng.random(len(meta)) > 0.3].sort_values("clip_id").reset_index(drop=True)  # the cache's order
    meta["gender"] = meta["gender"].astype(object).where(~meta["actor"].isin([3, 4]), None)
    n = 200
    x = rng.normal(size=(len(meta), n)) + rng.normal(size=(25, n))[meta["actor"].to_numpy()]
    cell = pd.factorize(meta["actor"].astype(str) + "/" + meta["emotion"].astype(str))[0]
    x += rng.normal(0, 0.3, size=(cell.max() + 1, n))[cell]
    x[:, :40] += 1.5 * (meta["emotion"] == "angry").to_numpy()[:, None]
    units = pd.DataFrame({"site": pd.Series(np.where(np.arange(n) < 120, "hidden", "ffn")).astype(STRING),
                          "layer": np.int32(np.arange(n) % 120 // 40 + 1), "neuron": np.int32(np.arange(n) % 40)})
    return meta, ActivationMatrix(meta["clip_id"].tolist(), units, x.astype(np.float32))


def test_unit_bounds_cover_every_unit_and_leave_no_block_of_one():
    assert unit_bounds(10, None) == [(0, 10)]
    assert unit_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert unit_bounds(9, 4) == [(0, 4), (4, 9)]  # not (8, 9): one column sums in another order
    assert unit_bounds(10, 1) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    assert unit_bounds(1, 1) == [(0, 1)]
    assert block_width(1000, 50, 1.0) == 2**30 // 50_000 and block_width(10**9, 50, 1.0) == 2


def test_spilled_blocks_hold_the_matrix(tmp_path, study):
    _, matrix = study
    cache = ActivationCache(write_shards(tmp_path, matrix), "mean")
    assert cache.clip_ids == sorted(matrix.clip_ids)
    whole = cache.matrix()
    order = np.argsort(matrix.clip_ids, kind="stable")
    np.testing.assert_array_equal(whole.values, matrix.values[order])
    pd.testing.assert_frame_equal(whole.units, matrix.units)
    picked = [7, 150, 3]
    np.testing.assert_array_equal(cache.matrix(picked).values, matrix.values[order][:, picked])
    with cache.blocks(bytes_per_value=4, memory_gib=len(matrix.clip_ids) * 4 * 40 / 2**30,
                      reserved_gib=0, folder=tmp_path) as blocks:
        assert blocks.bounds == unit_bounds(200, 40) and len(blocks.bounds) == 5
        assert len(list(tmp_path.glob("activation-blocks-*/*.f32"))) == 5
        np.testing.assert_array_equal(np.hstack([blocks.block(i) for i in range(5)]), whole.values)
        np.testing.assert_array_equal(blocks.columns([199, 0, 40, 39]), whole.values[:, [199, 0, 40, 39]])
    assert not list(tmp_path.glob("activation-blocks-*"))  # the spill is gone
    with cache.blocks(bytes_per_value=4, memory_gib=1.0) as blocks:  # fits: the matrix itself
        assert isinstance(blocks, ActivationMatrix) and blocks.bounds == [(0, 200)]
    with pytest.raises(ValueError, match="compute.memory_gib = 0.4 leaves nothing"):
        with cache.blocks(bytes_per_value=4, memory_gib=0.4):
            pass


def test_a_cache_in_two_parts_joins_each_clip_s_units(tmp_path, study):
    """The SAE latents live in shards of their own (rule sae_activations): the activation pass's
    shards and the latents' shards together give the same matrix, in memory and spilled in blocks
    that cut across both parts, as one set of shards holding every unit; a clip one part lacks
    (its job failed) is left out; files without rows add nothing; asking for one site reads its
    part only."""
    _, matrix = study
    units = matrix.units.copy()
    units.loc[160:, "site"] = "sae"  # the last 40 units: latents
    units["site"] = units["site"].astype(STRING)
    whole = ActivationMatrix(matrix.clip_ids, units, matrix.values)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    reference = ActivationCache(write_shards(tmp_path / "one", whole), "mean")
    model = ActivationMatrix(matrix.clip_ids, units.iloc[:160].reset_index(drop=True), matrix.values[:, :160])
    latents = ActivationMatrix(matrix.clip_ids[1:], units.iloc[160:].reset_index(drop=True),
                               matrix.values[1:, 160:])  # the first clip failed in the latents' job
    (tmp_path / "two" / "sae").mkdir()
    paths = [*write_shards(tmp_path / "two", model), *write_shards(tmp_path / "two" / "sae", latents, shards=2)]
    pd.DataFrame({c: pd.Series(dtype=t) for c, t in [("clip_id", "str"), ("site", "str"), ("layer", "int32"),
                  ("neuron", "int32"), ("mean", "float32"), ("std", "float32"), ("max", "float32")]}
                 ).to_parquet(tmp_path / "two" / "empty.parquet")
    joined = ActivationCache([*paths, tmp_path / "two" / "empty.parquet"], "mean")
    assert joined.clip_ids == [c for c in reference.clip_ids if c in set(matrix.clip_ids[1:])]
    rows = [reference.clip_ids.index(c) for c in joined.clip_ids]
    expected = reference.matrix().values[rows]
    pd.testing.assert_frame_equal(joined.units, reference.units)
    np.testing.assert_array_equal(joined.matrix().values, expected)
    np.testing.assert_array_equal(joined.matrix([199, 3, 160, 159]).values, expected[:, [199, 3, 160, 159]])
    with joined.blocks(bytes_per_value=4, memory_gib=len(rows) * 4 * 30 / 2**30, reserved_gib=0,
                       folder=tmp_path) as blocks:  # blocks of 30: one holds units of both parts
        assert (150, 180) in blocks.bounds
        np.testing.assert_array_equal(np.hstack([blocks.block(i) for i in range(len(blocks.bounds))]), expected)
    only = ActivationCache(paths, "mean", sites=["sae"])
    assert len(only.units) == 40
    np.testing.assert_array_equal(only.matrix().values, expected[:, 160:])


def test_selectivity_in_blocks_equals_the_whole_matrix_bit_for_bit(tmp_path, study):
    meta, matrix = study
    settings = StatsSettings(permutations=99, mixed_top_units=3)
    whole, notes = selectivity(matrix, meta, SPEC, settings)
    assert whole.loc[whole["factor"] == "emotion", "selective"].sum() >= 30  # the tail flips run
    assert whole["mixed_p"].notna().sum() == 3 * 3  # emotion, intensity, statement
    assert any("gender: " in note and "unknown" in note for note in notes)
    cache = ActivationCache(write_shards(tmp_path, matrix), "mean")
    in_memory = ActivationMatrix(matrix.clip_ids, matrix.units, matrix.values, width=7)
    with cache.blocks(bytes_per_value=4, memory_gib=len(meta) * 4 * 45 / 2**30, reserved_gib=0, folder=tmp_path) as spilled:
        assert len(spilled.bounds) == 5
        for source in (in_memory, spilled):
            table, said = selectivity(source, meta, SPEC, settings)
            key = ["factor", "site", "layer", "neuron"]
            pd.testing.assert_frame_equal(table.sort_values(key).reset_index(drop=True),
                                          whole.sort_values(key).reset_index(drop=True), check_exact=True)
            assert said == notes


def test_selection_in_blocks_equals_the_whole_matrix_bit_for_bit(tmp_path, study):
    meta, matrix = study
    table, _ = selectivity(matrix, meta, SPEC, StatsSettings(permutations=99, mixed_top_units=0))
    settings = SelectionSettings(top_k=2, folds=3, permutations=99, random_controls=2)
    whole, replication, notes = select_units(matrix, meta, table, SPEC, settings)
    assert set(whole["reason"]) == {"top_k", "cross_fit", "random_control"}
    crossed = whole[whole["reason"] == "cross_fit"]
    planted = (crossed["site"] == "hidden") & (crossed["layer"] == 1)  # only angry is planted, there
    assert planted.sum() == 3 * 2 and (crossed.loc[planted, "emotion"] == "angry").all()
    assert (~planted).sum() <= 1  # BH at 0.05 lets a stray null row in (here ffn 1, level_q 0.049)
    assert crossed["heldout_q"].notna().all() and replication["n_rows"].sum() == len(crossed)
    assert (crossed.loc[planted, "heldout_q"] < 0.05).all()
    cache = ActivationCache(write_shards(tmp_path, matrix), "mean")
    with cache.blocks(bytes_per_value=4, memory_gib=len(meta) * 4 * 45 / 2**30, reserved_gib=0, folder=tmp_path) as spilled:
        for source in (ActivationMatrix(matrix.clip_ids, matrix.units, matrix.values, width=9), spilled):
            blocked, again, said = select_units(source, meta, table, SPEC, settings)
            pd.testing.assert_frame_equal(blocked, whole, check_exact=True)
            pd.testing.assert_frame_equal(again, replication, check_exact=True)
            assert said == notes


def test_probes_from_spilled_blocks_equal_the_whole_matrix(tmp_path, study):
    """Blocks of 45 units cut across the 40-unit layers: a layer's columns come from two files."""
    meta, matrix = study
    settings = ProbeSettings(folds=3, inner_folds=2, permutations=3)
    whole, notes = layer_probes(matrix, meta, SPEC, settings, progress=False)
    assert len(whole) == 5 * 5  # 5 layers x (4 factors + the speaker control)
    cache = ActivationCache(write_shards(tmp_path, matrix), "mean")
    with cache.blocks(bytes_per_value=4, memory_gib=len(meta) * 4 * 45 / 2**30, reserved_gib=0,
                      folder=tmp_path) as spilled:
        assert len(spilled.bounds) == 5
        blocked, said = layer_probes(spilled, meta, SPEC, settings, progress=False)
    pd.testing.assert_frame_equal(blocked, whole, check_exact=True)
    assert said == notes


def test_bootstrap_a_layer_at_a_time_equals_the_whole_matrix(tmp_path, study):
    meta, matrix = study
    table, _ = selectivity(matrix, meta, SPEC, StatsSettings(permutations=99, mixed_top_units=0))
    selected, _, _ = select_units(matrix, meta, table, SPEC, SelectionSettings(top_k=2, folds=3, permutations=99))
    settings = BootstrapSettings(resamples=20, top_k=2)
    units, layers, notes = speaker_bootstrap(matrix, meta, selected, SPEC, settings, progress=False)
    assert len(layers) and units["effect"].notna().any()  # resampled layers and held-out effects
    cache = ActivationCache(write_shards(tmp_path, matrix), "mean")
    with cache.blocks(bytes_per_value=4, memory_gib=len(meta) * 4 * 45 / 2**30, reserved_gib=0,
                      folder=tmp_path) as spilled:
        assert len(spilled.bounds) == 5
        again = speaker_bootstrap(spilled, meta, selected, SPEC, settings, progress=False)
    pd.testing.assert_frame_equal(again[0], units, check_exact=True)
    pd.testing.assert_frame_equal(again[1], layers, check_exact=True)
    assert again[2] == notes

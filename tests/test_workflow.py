"""End to end: the demo workflow through Snakemake in a temporary folder."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

import pandas as pd
import pytest
import yaml

from audio_files import write_tone
from snakemake_runs import SNAKEMAKE, scheduled, snakemake
from speechneurons.ablation.store import read_attributions
from speechneurons.ablation.summary import SUMMARY_SCHEMA
from speechneurons.audio import load_waveform
from speechneurons.datasets.ravdess import CLIP_COLUMNS
from speechneurons.schemas import ACTIVATION_SCHEMA, ATTRIBUTION_SCHEMA, SEGMENT_SCHEMA

pytestmark = pytest.mark.workflow
COMBO = "baseline~zero/segment_ms~20/reduction~mean"
RUN = "results/model~tiny-wavlm"  # the demo's one model
UNITS = 3 * 32 + 2 * 64 + 64  # hidden layers 0..2 x 32, ffn layers 1..2 x 64, SAE of hidden 1 x 64 latents
# the demo's 2 baselines x 2 segment lengths; tests that need no comparison run the first one only
COMBOS = 4
ONE_COMBINATION = {"ablation": {"baselines": ["zero"], "segment_ms": [20]}, "reliability": {"enabled": False}}


def write_override(work: Path, name: str, extra: dict) -> str:
    base = yaml.safe_load((work / "override.yaml").read_text())
    for key, value in extra.items():
        base.setdefault(key, {}).update(value)
    (work / name).write_text(yaml.safe_dump(base))
    return name


def all_tables(work: Path) -> dict[str, pd.DataFrame]:
    return {str(p.relative_to(work)): pd.read_parquet(p) for p in sorted((work / "results").rglob("*.parquet"))}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, repo, demo_root):
    """The demo config on the bundled clips plus two bad files, run once."""
    work = tmp_path_factory.mktemp("workflow")
    data = work / "ravdess"
    shutil.copytree(demo_root, data)
    write_tone(data / "Actor_02" / "03-01-09-01-01-01-02.wav")  # emotion code 09
    (data / "Actor_02" / "03-01-03-01-01-01-02.wav").write_bytes(b"RIFF....WAVEgarbage")
    (data / "Actor_02" / os.fsdecode(b"03-01-04-01-01-01-02 caf\xe9.wav")).write_bytes(b"RIFF")  # not UTF-8
    shutil.copy(repo / "config.yaml", work / "config.yaml")
    (work / "override.yaml").write_text(yaml.safe_dump({"dataset": {"root": str(data)}}))
    run = snakemake(work, repo, "--cores", "2")
    report = snakemake(work, repo, "--cores", "1", "--report", "results/report.html")
    return work, data, run, report


def test_a_finished_run_says_where_to_look(demo_run):
    _, _, run, _ = demo_run
    assert "speechneurons: the run finished." in run.stderr
    assert ("4 file(s) under dataset.root are not clips, each with its reason: "
            "results/index/rejected.parquet") in run.stderr
    assert "The report: snakemake --report results/report.html" in run.stderr


def test_torch_jobs_write_their_benchmarks(demo_run):
    """Wall time and peak memory of each torch job, to size a cluster profile's runtime and mem_mb."""
    work, _, _, _ = demo_run
    bench = work / "results/benchmarks/model~tiny-wavlm"
    for path in [bench / "activations/shard-0.tsv", bench / f"ablation/{COMBO}/shard-1.tsv",
                 bench / "knockout/shard-0.tsv", bench / "reliability/randomisation.tsv"]:
        table = pd.read_csv(path, sep="\t")
        assert len(table) == 1 and table["s"].iloc[0] > 0 and table["max_rss"].iloc[0] > 100, path


def test_index_tables(demo_run):
    work, _, _, _ = demo_run
    clips = pd.read_parquet(work / "results/index/clips.parquet")
    rejected = pd.read_parquet(work / "results/index/rejected.parquet")
    assert list(clips.columns) == CLIP_COLUMNS and len(clips) == 8
    assert list(rejected.columns) == ["path", "reason"]
    assert sorted(rejected["path"]) == ["Actor_02/03-01-03-01-01-01-02.wav",
                                        "Actor_02/03-01-04-01-01-01-02 caf\\xe9.wav",
                                        "Actor_02/03-01-09-01-01-01-02.wav", "README.md"]
    # a name that is not UTF-8 is a row that shows its bytes and asks for a rename; the run finished
    assert "rename it" in rejected.set_index("path")["reason"]["Actor_02/03-01-04-01-01-01-02 caf\\xe9.wav"]


def test_activation_shards_cover_every_clip_once(demo_run):
    """The activation pass's shards hold the model's units, the latents' shards (rule
    sae_activations) the SAE's: together every unit of every clip once, as the cache reads them."""
    from speechneurons.cache import ActivationCache

    work, _, _, _ = demo_run
    paths = [work / f"{RUN}/activations/{part}shard-{k}.parquet" for part in ("", "sae/") for k in (0, 1)]
    shards = [pd.read_parquet(path) for path in paths]
    for shard in shards:
        assert list(shard.columns) == list(ACTIVATION_SCHEMA)
    both = pd.concat(shards)
    assert len(both) == 8 * UNITS  # clips x (hidden layers 0..2 x 32 + ffn layers 1..2 x 64 + 64 latents)
    assert both.groupby("clip_id").size().eq(UNITS).all()
    assert set(pd.concat(shards[2:])["site"]) == {"sae"} and "sae" not in set(pd.concat(shards[:2])["site"])
    assert set(shards[0]["clip_id"]).isdisjoint(shards[1]["clip_id"])
    assert (both["std"] >= 0).all() and (both["max"] >= both["mean"]).all()
    cache = ActivationCache(paths)
    assert len(cache.clip_ids) == 8 and len(cache.units) == UNITS


def test_selectivity_and_selection_tables(demo_run):
    work, _, _, _ = demo_run
    table = pd.read_parquet(work / f"{RUN}/tables/selectivity.parquet")
    assert len(table) == UNITS * 4  # emotion, gender, intensity, statement
    for column in ["site", "layer", "neuron", "factor", "F", "p_F", "kruskal_H", "eta2", "omega2",
                   "cohens_d", "preferred_level", "preference_d", "F_speaker", "p_speaker",
                   "p_perm", "q_perm", "q_speaker", "selective", "gg_epsilon", "speakers_left_out",
                   "thin_cells", "mixed_p", "speaker_icc", "F_within_speakers", "df_speaker_den",
                   "n_speakers"]:
        assert column in table.columns, column
    # 8 clips of 6 actors: no actor says every emotion, none says both intensities, so only
    # gender (3 + 3 actors, Welch on speaker means) has a speaker-general test
    testable = table["df_speaker_den"] >= 1
    assert set(table.loc[testable, "factor"]) == {"gender"}
    assert table.loc[testable, "p_perm"].between(1 / 1001, 1).all()
    assert table.loc[~testable, ["F_speaker", "p_speaker", "p_perm"]].isna().all().all()
    assert not table.loc[~testable, "selective"].any()
    chosen = pd.read_parquet(work / f"{RUN}/tables/selected_units.parquet")
    # config: top 2 per (site, layer) and emotion (4 emotions, 6 site-layers with the SAE's) + 2 controls each
    assert (chosen["reason"] == "top_k").sum() == 2 * 4 * 6
    assert (chosen["reason"] == "random_control").sum() == 2 * 6
    # cross-fitted: two folds of three actors, each chosen on the other fold's actors
    cross = chosen[chosen["reason"] == "cross_fit"]
    held = {f: set(g["held_out"].iloc[0]) for f, g in cross.groupby("fold")}
    assert sorted(held) == [0, 1] and held[0].isdisjoint(held[1]) and len(held[0] | held[1]) == 6
    # the demo's held-out actors hold no level twice beside another: no row can be tested there,
    # and the replication table says so per (site, layer) rather than printing a rate of 0
    assert cross["heldout_p"].isna().all()
    replication = pd.read_parquet(work / f"{RUN}/tables/replication.parquet")
    assert len(replication) == 6 and (replication["n_rows"] == 10).all()
    assert (replication["n_tested"] == 0).all() and replication["replication_rate"].isna().all()
    # every actor misses an emotion, and every cell rests on one clip (stats.min_clips_per_cell 2)
    emotion = table[table["factor"] == "emotion"]
    assert (emotion["speakers_left_out"] == 6).all() and (emotion["thin_cells"] == 8).all()


def test_ablation_and_aggregate_tables(demo_run):
    work, data, _, _ = demo_run
    chosen = pd.read_parquet(work / f"{RUN}/tables/selected_units.parquet")
    ablated_units = chosen[["site", "layer", "neuron"]].drop_duplicates()
    n_units = len(ablated_units)  # the selected units are the ablated ones
    clips = pd.read_parquet(work / "results/index/clips.parquet")
    segments = {c.clip_id: -(-len(load_waveform(data / c.path)) // 320) for c in clips.itertuples()}
    shards = work / f"{RUN}/ablation/{COMBO}"
    index = [shards / f"segments/shard-{k}.parquet" for k in (0, 1)]
    for path in index:
        assert list(pd.read_parquet(path).columns) == list(SEGMENT_SCHEMA)
    long = read_attributions([shards / f"attributions/shard-{k}.safetensors" for k in (0, 1)], index)
    assert list(long.columns) == list(ATTRIBUTION_SCHEMA)
    assert len(long) == n_units * sum(segments.values())
    per_clip = long.groupby("clip_id")["segment"].max() + 1
    assert per_clip.to_dict() == segments
    got = long[["site", "layer", "neuron"]].drop_duplicates()
    assert sorted(map(tuple, got.values.tolist())) == sorted(map(tuple, ablated_units.values.tolist()))

    clip_units = pd.read_parquet(work / f"{RUN}/tables/{COMBO}/clip_unit_summary.parquet")
    assert len(clip_units) == 8 * n_units
    assert clip_units["loud_share"].between(0, 1).all()
    assert set(SUMMARY_SCHEMA) <= set(clip_units.columns)
    assert {"speaker", "actor", "emotion", "gender", "intensity"} <= set(clip_units.columns)

    conditions = pd.read_parquet(work / f"{RUN}/tables/{COMBO}/condition_summary.parquet")
    # the 8 clips fill 8 distinct (emotion, gender, intensity) cells
    assert len(conditions) == n_units * 8
    assert conditions["n_clips"].eq(1).all()
    for column in ["site", "layer", "neuron", "emotion", "gender", "intensity", "n_clips",
                   "n_speakers", "mean_total", "std_total", "sem_total", "mean_abs_mass"]:
        assert column in conditions.columns


def test_figures_and_report(demo_run):
    work, _, _, _ = demo_run
    figures = [f"{RUN}/figures/{COMBO}/{name}" for name in (
        "clip_attribution.png", "level_comparison.png", "temporal_profiles.png", "prosody.png",
        "group_contrasts.png", "graded_effects.png")]
    figures += [f"{RUN}/figures/selectivity_heatmap.png", f"{RUN}/figures/unit_distributions.png",
                f"{RUN}/figures/sae_quality.png", f"{RUN}/figures/neurons_vs_features.png",
                f"{RUN}/figures/probes_by_layer.png", f"{RUN}/figures/knockout.png"]
    for name in figures:
        png = work / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert png.stat().st_size > 10_000
        assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-", name
    listening = (work / f"{RUN}/figures/{COMBO}/listening.html").read_text()
    # one section per emotion in the demo, each with its audio and curve
    assert listening.count("<audio") == 4 and listening.count("data:audio/wav;base64,") == 4
    browser = (work / f"{RUN}/figures/{COMBO}/unit_browser.html").read_text()
    # config: 6 units, 2 clips each, every one with its audio and curve
    assert browser.count("<article>") == 6 and browser.count("data:audio/wav;base64,") == 12
    assert "http://" not in browser and "https://" not in browser
    probes = pd.read_parquet(work / f"{RUN}/tables/probes.parquet")
    assert set(probes["layer"]) == {0, 1, 2} and set(probes["factor"]) <= {"emotion", "gender", "intensity",
                                                                            "statement"}
    knockout = pd.read_parquet(work / f"{RUN}/tables/knockout.parquet")
    assert set(knockout["level"]) <= {"neutral", "happy", "sad", "angry"} and len(knockout)
    # the demo's SAE (hidden layer 1, 64 latents): trained on 4 actors, judged on the other 2
    quality = pd.read_parquet(work / f"{RUN}/tables/sae_quality.parquet")
    assert len(quality) == 1 and quality.loc[0, "layer"] == 1 and quality.loc[0, "l0"] <= 4
    assert (quality.loc[0, "train_speakers"], quality.loc[0, "held_out_speakers"]) == (4, 2)
    assert 0.3 < quality.loc[0, "fve"] <= 1
    assert "<h2>hidden layer 1</h2>" in (work / f"{RUN}/figures/sae.html").read_text()
    prosody = (work / f"{RUN}/figures/{COMBO}/prosody.html").read_text()
    assert "<h2>Units that follow F0 (semitones re speaker)</h2>" in prosody
    html = (work / "results/report.html").read_text()
    assert "prosody.html" in html
    # categories in the corpus's words (RAVDESS: emotion, gender, intensity)
    for category in ["1 Layer specialisation", "2 Emotion encoding", "3 Temporal patterns",
                     "4 Gender differences", "5 Intensity effects", "Listening to the evidence",
                     "Features (sparse autoencoders)"]:
        assert category in html, category
    for name in figures:
        assert Path(name).name in html


def test_sae_latents_run_through_the_whole_dag(demo_run):
    """The demo's SAE of hidden layer 1 (64 latents) is one more site: in the cache, the selection,
    the ablation, the knock-out and the browser, and set beside the layer's neurons."""
    work, _, _, _ = demo_run
    from speechneurons.neurons_vs_features import KNOCKOUT, PROBE, SHARE

    chosen = pd.read_parquet(work / f"{RUN}/tables/selected_units.parquet")
    latents = chosen[chosen["site"] == "sae"]
    assert set(latents["layer"]) == {1} and set(latents["reason"]) == {"top_k", "cross_fit", "random_control"}
    assert latents["neuron"].between(0, 63).all()
    ablated = pd.read_parquet(work / f"{RUN}/tables/{COMBO}/clip_unit_summary.parquet")
    assert len(ablated[ablated["site"] == "sae"]) == 8 * len(latents[["layer", "neuron"]].drop_duplicates())
    probes = pd.read_parquet(work / f"{RUN}/tables/probes.parquet")  # probes.sites: [hidden, sae]
    assert set(zip(probes["site"], probes["layer"])) == {("hidden", 0), ("hidden", 1), ("hidden", 2), ("sae", 1)}
    knockout = pd.read_parquet(work / f"{RUN}/tables/knockout_folds.parquet")
    assert set(knockout["site"]) == {"hidden", "sae"}
    assert set(knockout.loc[knockout["site"] == "sae", "layer"]) == {1}
    table = pd.read_parquet(work / f"{RUN}/tables/neurons_vs_features.parquet")
    assert list(dict.fromkeys(table["measure"])) == [SHARE, PROBE, KNOCKOUT]
    assert set(table["layer"]) == {1} and set(table["site"]) == {"hidden"}
    shares = table[table["measure"] == SHARE]
    assert set(shares["factor"]) == {"emotion", "gender", "intensity", "statement"}
    assert (shares["n_neurons"] == 32).all() and (shares["n_latents"] == 64).all()
    probe = table[table["measure"] == PROBE]
    assert (probe["top_k"] == 8).all() and probe[["neurons", "latents"]].stack().between(0, 1).all()
    html = (work / "results/report.html").read_text()
    assert "neurons_vs_features.png" in html


def test_the_report_says_how_far_to_trust_the_results(demo_run):
    """Two baselines x two segment lengths: agreement per pair of settings, deletion curves on the
    configured sample, the cascade over every layer, the bootstrap of every top-k unit, a page."""
    work, _, _, _ = demo_run
    tables = {p.stem: pd.read_parquet(p) for p in (work / f"{RUN}/tables/reliability").glob("*.parquet")}
    agreement = tables["agreement"]
    assert sorted(set(zip(agreement["setting"], agreement["a"], agreement["b"]))) == [
        ("baseline", "zero", "noise-snr20"), ("segment_ms", "20", "100")]
    # every pair, every (site, layer): 6 site-layers x (2 baseline pairs + 2 length pairs)
    assert len(agreement) == 6 * 4 and agreement["median_rho"].between(-1, 1).all()
    deletion = tables["deletion"]  # config: 2 clips x 4 units per combination
    assert len(deletion) == COMBOS * 2 * 4 and deletion[["area_between", "additivity_gap"]].notna().all().all()
    curves = tables["deletion_curves"]  # 5 steps: fractions 0, 0.2, ..., 1
    assert sorted(curves["fraction"].unique()) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    cascade = tables["randomisation"]
    assert sorted(cascade["randomised_from"].unique()) == [0, 1, 2]
    assert len(tables["randomisation_units"]) == 4
    selected = pd.read_parquet(work / f"{RUN}/tables/selected_units.parquet")
    # the study-wide top-k units (stability) and the cross-fitted ones (their held-out effect)
    assert len(tables["bootstrap_units"]) == selected["reason"].isin(["top_k", "cross_fit"]).sum()
    assert tables["bootstrap"]["mean_jaccard"].between(0, 1).all()
    page = (work / f"{RUN}/figures/reliability.html").read_text()
    for heading in ("Across settings", "Deletion and additivity", "Model randomisation",
                    "Stability over speakers", "Cost"):
        assert f"<h2>{heading}</h2>" in page
    assert "baseline (zero vs noise-snr20): median rank correlation" in page
    html = (work / "results/report.html").read_text()
    assert "How far to trust these results" in html and "reliability.png" in html


def test_question_tables(demo_run):
    work, _, _, _ = demo_run
    expected = {
        "layer_specialisation": ["site", "layer", "factor", "n_units", "n_selective", "share_selective",
                                 "median_eta2", "median_omega2"],
        f"{COMBO}/target_encoding": ["emotion", "fold", "site", "layer", "neuron", "rank", "activation_score",
                                      "attribution_d", "attribution_dz", "attribution_p", "attribution_q",
                                      "n_speakers_tested", "train_q_speaker", "heldout_F",
                                      "heldout_p", "heldout_q"],
        f"{COMBO}/temporal_profiles": ["site", "layer", "emotion", "alignment", "bin", "bin_start",
                                       "bin_end", "mean_share", "ci_low", "ci_high", "n_speakers"],
        f"{COMBO}/loudness": ["site", "layer", "emotion", "mean_loud_share", "mean_loud_time_share",
                             "enrichment", "p", "q"],
        f"{COMBO}/prosody_units": ["fold", "site", "layer", "neuron", "chosen_for", "measure", "n_speakers",
                                   "mean_rho", "ci_low", "ci_high", "p", "q", "partial_rho", "partial_q", "follows"],
        f"{COMBO}/prosody_layers": ["site", "layer", "chosen_for", "measure", "n_units", "n_following",
                                    "mean_rho", "ci_low", "ci_high", "p", "q", "partial_q"],
        f"{COMBO}/group_contrasts": ["fold", "site", "layer", "neuron", "contrast", "attribution_diff", "attribution_d",
                                      "attribution_p", "attribution_q", "activation_d", "activation_q"],
        f"{COMBO}/graded_effects": ["measure", "contrast", "site", "layer", "neuron", "n_pairs", "mean_diff",
                                       "dz", "p", "q"],
    }
    for name, columns in expected.items():
        table = pd.read_parquet(work / f"{RUN}/tables/{name}.parquet")
        assert set(columns) <= set(table.columns), name
    layers = pd.read_parquet(work / f"{RUN}/tables/layer_specialisation.parquet")
    assert len(layers) == 6 * 4  # (hidden 0-2, ffn 1-2, sae 1) x 4 factors
    emotion = pd.read_parquet(work / f"{RUN}/tables/{COMBO}/target_encoding.parquet")
    chosen = pd.read_parquet(work / f"{RUN}/tables/selected_units.parquet")
    assert len(emotion) == (chosen["reason"] == "cross_fit").sum()  # each fold's units, on its held-out actors
    temporal = pd.read_parquet(work / f"{RUN}/tables/{COMBO}/temporal_profiles.parquet")
    everything = temporal[(temporal["site"] == "all") & (temporal["alignment"] == "normalised")]
    # shares of attribution over normalised time sum to 1 for every emotion
    assert everything.groupby("emotion")["mean_share"].sum().round(6).eq(1).all()
    # voicing onset, offset and pitch accents from Praat's tracks: every clip of the demo has them
    assert set(temporal["alignment"]) == {"normalised", "onset", "offset", "accent"}
    tracks = pd.concat([pd.read_parquet(p) for p in (work / "results/prosody").glob("shard-*.parquet")])
    per_clip = tracks.groupby("clip_id").agg(voiced=("voiced", "mean"), accents=("accent", "sum"))
    assert len(per_clip) == 8 and per_clip["voiced"].between(0.2, 0.6).all() and per_clip["accents"].sum() > 8
    # every tested unit of the selection against the six measures, on the speakers that did not choose it
    units = pd.read_parquet(work / f"{RUN}/tables/{COMBO}/prosody_units.parquet")
    tested = chosen[chosen["reason"].isin(["cross_fit", "explicit", "random_control"])]
    assert len(units[["fold", "site", "layer", "neuron"]].drop_duplicates()) == len(
        tested.drop_duplicates(["fold", "site", "layer", "neuron"]))
    assert units["mean_rho"].between(-1, 1).all() and units["q"].between(0, 1).all()
    assert (units.loc[units["fold"] >= 0, "n_speakers"] == 3).all()  # 2 folds of the 6 actors


def test_rerun_schedules_nothing_and_seed_spelling_works(demo_run, repo):
    work, data, _, _ = demo_run
    again = snakemake(work, repo, "-n", "--cores", "1")
    assert "Nothing to be done" in again.stdout + again.stderr
    # the original guide's --ravdess_path spelling sets dataset.root
    same = snakemake(work, repo, "-n", "--cores", "1", "--config", f"ravdess_path={data}")
    assert "Nothing to be done" in same.stdout + same.stderr
    moved = snakemake(work, repo, "-n", "--cores", "1", "--config", f"ravdess_path={work}")
    assert "index" in moved.stdout and "Params have changed" in moved.stdout + moved.stderr


def test_a_figure_key_reruns_only_the_figures(demo_run, repo):
    work, _, _, _ = demo_run
    name = write_override(work, "figure-only.yaml", {"figures": {"site": "hidden"}})
    plan = scheduled(snakemake(work, repo, "-n", "--cores", "1", configs=(name,)))
    assert plan == {"figures": COMBOS, "listening": COMBOS, "all": 1}  # the browser chooses no example unit


def test_an_edit_of_aggregation_or_a_page_reruns_no_model_job(demo_run, repo, tmp_path):
    """The import graph is the rerun graph: a changed aggregation module (aggregate.py) and page
    template (base.html) rerun the jobs that import them, and no activation, ablation, knock-out
    or model-check job."""
    work, _, _, _ = demo_run
    edited = tmp_path / "repo"
    shutil.copytree(repo, edited, ignore=shutil.ignore_patterns(".venv", ".git", "results", ".snakemake",
                                                                 "__pycache__", "*.egg-info"))
    with open(edited / "speechneurons/aggregate.py", "a") as module:
        module.write("\n_EDITED = True\n")  # a line of code: a comment would count for nothing
    with open(edited / "speechneurons/templates/base.html", "a") as template:
        template.write("\n{# edited #}\n")
    plan = scheduled(snakemake(work, edited, "-n", "--cores", "1"))
    assert {"aggregate", "problems", "listening", "unit_browser", "reliability_report"} <= set(plan)
    assert not set(plan) & {"activations", "ablation", "knockout_activations", "reliability_deletion",
                            "reliability_randomisation", "index_shard", "index", "selectivity"}


def test_a_docstring_edit_reruns_nothing_and_a_statement_edit_its_closure(demo_run, repo, tmp_path):
    """The code hash is of the syntax tree (issue 37): a sentence added to a statistics module's
    docstring, a comment and a reformatted line plan nothing (before: 57 of 69 jobs); a changed
    line of code in a statistics module plans the jobs whose scripts import it, and no model job
    (stats/intervals.py: the selection does not import it; a line in stats/fdr.py also reruns the
    selection, and the ablation of the units it names follows it)."""
    work, _, _, _ = demo_run
    edited = tmp_path / "repo"
    shutil.copytree(repo, edited, ignore=shutil.ignore_patterns(".venv", ".git", "results", ".snakemake",
                                                                 "__pycache__", "*.egg-info"))
    fdr = edited / "speechneurons/stats/fdr.py"
    source = fdr.read_text()
    fdr.write_text(source.replace('"""', '"""One sentence more.\n', 1).replace(" = ", "  =  ", 1) + "\n# a note\n")
    (edited / "scripts/selectivity.py").write_text((edited / "scripts/selectivity.py").read_text() + "\n# a note\n")
    assert scheduled(snakemake(work, edited, "-n", "--cores", "1")) == {}
    fdr.write_text(source)
    with open(edited / "speechneurons/stats/intervals.py", "a") as module:
        module.write("\n_EDITED = True\n")
    plan = scheduled(snakemake(work, edited, "-n", "--cores", "1"))
    assert {"probes", "knockout", "questions", "layer_specialisation", "unit_browser"} <= set(plan)
    assert not set(plan) & {"activations", "sae_frames", "sae_train", "sae_activations", "ablation",
                            "knockout_activations", "index_shard", "index", "prosody", "tiny_model",
                            "selectivity", "select_units"}, plan


def test_touched_or_copied_clips_rerun_nothing(demo_run, repo, tmp_path):
    """Data count by their bytes (issue 37): every clip touched, or written again as a copy without
    its times (a new inode), plans nothing (before: 65 of 69 jobs, every ablation included)."""
    work, data, _, _ = demo_run
    copy = copy_of_finished(work, tmp_path)
    clips = sorted(data.rglob("*.wav"))
    keep = {path: (path.read_bytes(), path.stat()) for path in clips}
    try:
        for path in clips:
            os.utime(path)  # touch
        assert scheduled(snakemake(copy, repo, "-n", "--cores", "1")) == {}
        for path, (content, _) in keep.items():
            path.unlink()
            path.write_bytes(content)  # cp without -p: same bytes, new inode and time
        assert scheduled(snakemake(copy, repo, "-n", "--cores", "1")) == {}
    finally:
        for path, (_, stat) in keep.items():
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_root_typo_stops_before_any_job_and_keeps_the_results(demo_run, repo, tmp_path):
    """A misspelled dataset.root (or a data disk that is not mounted) stops while Snakemake reads
    the workflow, naming the key and the folder it probably meant, and a real run then leaves every
    finished file byte for byte (before: the index jobs failed, Snakemake deleted their outputs and
    fixing the typo reran 68 of 69 jobs)."""
    work, data, _, _ = demo_run
    copy = copy_of_finished(work, tmp_path)

    def digests():
        return {p: p.read_bytes() for p in sorted((copy / "results").rglob("*")) if p.is_file()}

    before = digests()
    typo = str(data) + "x"
    name = write_override(copy, "typo.yaml", {"dataset": {"root": typo}})
    for args in (["-n"], ["--cores", "2"]):
        done = subprocess.run([SNAKEMAKE, "-s", str(repo / "Snakefile"), "--configfile", "config.yaml", name,
                               *args], cwd=copy, capture_output=True, text=True, timeout=300)
        out = done.stdout + done.stderr
        assert done.returncode != 0 and "Building DAG of jobs" not in out
        assert f"dataset.root: {typo} does not exist; the nearest folder that exists is {data.parent}, which " \
               f"holds {data} (did you mean that?)" in out, out[-2000:]
    assert digests() == before
    assert scheduled(snakemake(copy, repo, "-n", "--cores", "1")) == {}


def test_tables_do_not_depend_on_cores(demo_run, repo, tmp_path):
    """Each job computes with compute.threads, whatever --cores lets Snakemake give it (issue 37:
    the activation shards of --cores 1 and 2 differed in the last bits, and every F and p with
    them). The demo's jobs that compute with threads, from the activation pass and the SAE to the
    statistics, the selection, the probes and an ablation, run again with --cores 1: every table
    equals the --cores 2 run's bit for bit."""
    work, _, _, _ = demo_run
    copy = copy_of_finished(work, tmp_path)
    started = time.time()
    targets = [f"{RUN}/tables/{name}.parquet" for name in ("selectivity", "replication", "selected_units", "probes")]
    targets += [f"{RUN}/ablation/{COMBO}/summary/shard-{k}.parquet" for k in (0, 1)]
    snakemake(copy, repo, "--cores", "1", *targets, "--forcerun", "activations", "sae_frames")
    rerun = [path for path in sorted((copy / "results").rglob("*.parquet")) if path.stat().st_mtime > started]
    names = {str(path.relative_to(copy)) for path in rerun}
    assert {f"{RUN}/activations/shard-0.parquet", f"{RUN}/activations/sae/shard-1.parquet", *targets} <= names
    assert len(rerun) >= 16
    for path in rerun:
        pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(work / path.relative_to(copy)),
                                      check_exact=True, obj=str(path.relative_to(copy)))
    from speechneurons.provenance import read_provenance

    assert read_provenance(copy / f"{RUN}/activations/shard-0.parquet")["params"]["threads"] == 2


def test_a_prosody_key_reruns_the_tracks_and_their_readers_and_no_model_job(demo_run, repo):
    work, _, _, _ = demo_run
    name = write_override(work, "prosody.yaml", {"prosody": {"accent_st": 2.0}})
    plan = scheduled(snakemake(work, repo, "-n", "--cores", "1", configs=(name,)))
    readers = ("questions", "question_figures", "unit_prosody", "prosody_figures", "figures", "listening",
               "unit_browser")
    assert plan == {"prosody": 2, **dict.fromkeys(readers, COMBOS), "problems": 1, "all": 1}


def test_sae_keys_rerun_what_reads_them(demo_run, repo):
    """The comparison's k reruns the comparison only; a training key the SAE and, through its file,
    every job that reads the sae site: the latents' shards, not the activation pass (the frames
    are not read again)."""
    work, _, _, _ = demo_run
    name = write_override(work, "compare.yaml", {"sae": {"compare_top_k": 4}})
    plan = scheduled(snakemake(work, repo, "-n", "--cores", "1", configs=(name,)))
    assert plan == {"neurons_vs_features": 1, "problems": 1, "all": 1}
    name = write_override(work, "sae-training.yaml", {"sae": {"learning_rate": 0.002}})
    plan = scheduled(snakemake(work, repo, "-n", "--cores", "1", configs=(name,)))
    assert {"sae_train", "sae_report", "ablation", "knockout_activations", "neurons_vs_features"} <= set(plan)
    assert plan["sae_activations"] == 2  # the latents of each shard, from its stored frames
    assert not set(plan) & {"sae_frames", "index", "prosody", "activations"}  # no activation pass


def test_a_new_segment_length_runs_only_its_own_jobs(demo_run, repo):
    work, _, _, _ = demo_run
    name = write_override(work, "segments.yaml", {"ablation": {"segment_ms": [20, 100, 40]}})
    plan = scheduled(snakemake(work, repo, "-n", "--cores", "1", configs=(name,)))
    per_combo = {"ablation": 2, "aggregate": 1, "figures": 1, "questions": 1, "question_figures": 1,
                 "listening": 1, "unit_browser": 1, "unit_prosody": 1, "prosody_figures": 1}
    # 40 ms under both baselines; problems gathers every combination's failed clips and notes, and the
    # agreement and deletion checks compare every combination, so they follow too
    assert plan == {**{k: 2 * v for k, v in per_combo.items()}, "problems": 1, "reliability_agreement": 1,
                    "reliability_deletion": 1, "reliability_report": 1, "all": 1}
    name = write_override(work, "stats.yaml", {"stats": {"permutations": 500}})
    plan = scheduled(snakemake(work, repo, "-n", "--cores", "1", configs=(name,)))
    # the selection carries the statistics' q-values, so the knock-out of its units follows too, and the
    # neurons-vs-features shares read the statistics
    reliability = {f"reliability_{check}": 1 for check in ("agreement", "deletion", "randomisation",
                                                           "bootstrap", "report")}
    assert plan == {"selectivity": 1, "select_units": 1, "layer_specialisation": 1,
                    "selectivity_figures": 1, **{k: COMBOS * v for k, v in per_combo.items()}, "problems": 1,
                    "models_by_layer": 1, "knockout_activations": 2, "knockout": 1, **reliability,
                    "neurons_vs_features": 1, "all": 1}


#: the page of docs/ that describes a table's columns, by the table's name (else docs/outputs.md)
COLUMN_DOCS = {
    **dict.fromkeys(["selectivity", "replication", "selected_units"], "selectivity.md"),
    **dict.fromkeys(["probes", "knockout", "knockout_folds"], "probes-knockout-browser.md"),
    **dict.fromkeys(["layer_specialisation", "target_encoding", "temporal_profiles", "loudness",
                     "prosody_units", "prosody_layers", "group_contrasts", "graded_effects"], "questions.md"),
}


def test_every_column_of_every_table_is_documented(demo_run, repo):
    """Each column of each parquet file the demo writes is named in its page of docs/ (or in
    docs/outputs.md); ``name_<level>`` in a page stands for a column per level."""

    def names(page):
        text = (repo / "docs" / page).read_text()
        patterns = [re.escape(p) + r"\w+" for p in re.findall(r"([A-Za-z_]+_)<level>", text)]
        return set(re.findall(r"[A-Za-z_0-9]+", text)), patterns

    work, _, _, _ = demo_run
    undocumented = {}
    for path in sorted((work / "results").rglob("*.parquet")):
        page = "reliability.md" if "reliability" in path.parts else COLUMN_DOCS.get(path.stem, "outputs.md")
        (words, patterns), (general, _) = names(page), names("outputs.md")
        missing = [c for c in pd.read_parquet(path).columns if c not in words | general
                   and not any(re.fullmatch(p, c) for p in patterns)]
        if missing:
            undocumented[str(path.relative_to(work))] = (page, missing)
    assert not undocumented


def test_every_table_carries_its_provenance(demo_run):
    from speechneurons.provenance import read_provenance

    work, _, _, _ = demo_run
    for path in sorted((work / "results").rglob("*.parquet")):
        record = read_provenance(path)
        assert record["package"]["name"] == "speechneurons", path
        assert record["software"]["torch"].startswith("2.13.0")
        assert set(record["software"]) >= {"transformers", "captum"}
        if "index" not in path.parts and "prosody" not in path.parts:  # both read the audio only
            model = record["model"]
            assert model["name_or_path"] == "results/models/tiny-wavlm"
            assert len(model["weight_sha256"]) == 64
    summary = read_provenance(work / f"{RUN}/ablation/{COMBO}/summary/shard-0.parquet")
    assert summary["wildcards"] == {"model": "tiny-wavlm", "baseline": "zero", "segment_ms": "20", "reduction": "mean",
                                    "shard": "0"}
    assert summary["params"]["compute"]["perturbations_per_eval"] == 16 and len(summary["params"]["code"]) == 16


def copy_of_finished(work: Path, tmp_path: Path) -> Path:
    """A copy of a finished study (results, Snakemake's records, configs; times kept)."""
    copy = tmp_path / "copy"
    shutil.copytree(work, copy, symlinks=True)
    return copy


def test_every_job_feeds_rule_all(repo, demo_root, tmp_path):
    """A file that only its consumers ask for is lost when a killed rerun deletes it: every job of
    the demo's DAG (every stage on) must be a direct dependency of rule all."""
    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")
    (tmp_path / "override.yaml").write_text(yaml.safe_dump({"dataset": {"root": str(demo_root)},
                                                            "activations": {"frames": True}}))
    dot = snakemake(tmp_path, repo, "--dag").stdout
    nodes = dict(re.findall(r"^\s*(\d+)\[label = \"([^\"]+)\"", dot, re.M))
    edges = set(re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M))
    everything = next(n for n, label in nodes.items() if label == "all")
    orphans = sorted({label.split("\\n")[0] for n, label in nodes.items()
                      if n != everything and (n, everything) not in edges})
    assert len(nodes) > 40 and orphans == []


@pytest.mark.parametrize("rule, log, sig", [
    ("ablation", "ablation", signal.SIGKILL),
    ("activations", "activations", signal.SIGINT),
    ("knockout_activations", "knockout", signal.SIGKILL),
    ("reliability_randomisation", "reliability/randomisation", signal.SIGKILL),  # a model check
])
def test_a_killed_rerun_is_redone_by_the_next_run(demo_run, repo, tmp_path, rule, log, sig):
    """Force a stage of a finished study to run again, kill it (SIGKILL or Ctrl-C) while its job
    runs: after --unlock, the next run schedules that stage's jobs again (before the fix:
    "Nothing to be done", its outputs gone for good). For the ablation, the rerun's tables and
    arrays equal the uninterrupted run's."""
    work, _, _, _ = demo_run
    copy = copy_of_finished(work, tmp_path)
    logs = copy / "results/logs/model~tiny-wavlm"
    started = time.time()
    cmd = [SNAKEMAKE, "-s", str(repo / "Snakefile"), "--configfile", "config.yaml", "override.yaml",
           "--cores", "2", "--forcerun", rule]
    run = subprocess.Popen(cmd, cwd=copy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    def written_since_start(path: Path) -> bool:
        try:  # Snakemake deletes a forced job's old log between the glob and the stat
            return path.stat().st_mtime > started
        except FileNotFoundError:
            return False

    deadline = time.time() + 300
    while time.time() < deadline and run.poll() is None:
        if any(written_since_start(p) for p in [*logs.glob(f"{log}*/**/*.log"), *logs.glob(f"{log}*.log")]):
            break
        time.sleep(0.1)
    time.sleep(1.0)
    assert run.poll() is None, f"the workflow ended before its {rule} stage could be killed"
    os.killpg(run.pid, sig) if sig == signal.SIGKILL else run.send_signal(sig)
    run.wait(timeout=120)
    snakemake(copy, repo, "--unlock")
    plan = scheduled(snakemake(copy, repo, "-n", "--cores", "1", "--rerun-incomplete"))
    assert plan.get(rule, 0) >= 1, plan
    if rule != "ablation":
        return
    snakemake(copy, repo, "--cores", "2", "--rerun-incomplete")
    assert "Nothing to be done" in (lambda d: d.stdout + d.stderr)(snakemake(copy, repo, "-n"))
    expected, got = all_tables(work), all_tables(copy)
    assert got.keys() == expected.keys()
    for name, table in got.items():
        pd.testing.assert_frame_equal(table, expected[name], check_exact=True, obj=name)
    from safetensors.numpy import load_file

    for path in sorted((copy / f"{RUN}/ablation").rglob("*.safetensors")):
        mine, theirs = load_file(path), load_file(work / path.relative_to(copy))
        assert mine.keys() == theirs.keys()
        for clip in mine:
            np.testing.assert_array_equal(mine[clip], theirs[clip])


def test_a_damaged_table_stops_the_run_before_any_job_and_keeps_what_was_made_from_it(
        demo_run, repo, tmp_path):
    """An activation shard cut short (as by a full disk): Snakemake stops while it reads the
    workflow, naming the file and the command that regenerates it, and the selectivity table made
    from the shard stays as it was (before: the selectivity job started, deleted it and failed on
    pyarrow's "magic bytes not found"). Following the message reruns that shard and what follows."""
    work, _, _, _ = demo_run
    copy = copy_of_finished(work, tmp_path)
    shard = f"{RUN}/activations/shard-0.parquet"
    selectivity = copy / f"{RUN}/tables/selectivity.parquet"
    before = selectivity.read_bytes()
    (copy / shard).write_bytes((copy / shard).read_bytes()[:1000])
    for args in (["-n"], ["--cores", "1"]):
        done = subprocess.run([SNAKEMAKE, "-s", str(repo / "Snakefile"), "--configfile", "config.yaml",
                               "override.yaml", *args], cwd=copy, capture_output=True, text=True, timeout=300)
        assert done.returncode != 0
        out = done.stdout + done.stderr
        assert f"{shard} is damaged: it ends before its parquet footer (cut short)" in out, out[-3000:]
        assert f"rm '{shard}' && snakemake -s {repo / 'Snakefile'}" in out
    assert selectivity.read_bytes() == before
    (copy / shard).unlink()
    plan = scheduled(snakemake(copy, repo, "-n", "--cores", "1"))
    assert plan["activations"] == 1 and plan["selectivity"] == 1, plan


def test_changed_data_reruns_the_index_and_the_changed_clips_shard(demo_run, repo, tmp_path):
    """An added, replaced or removed clip under dataset.root reruns its own shard's part of the
    index, of the activation pass and of the SAE's frames, the gathered index and what reads it
    (before: nothing; then: every shard). The SAE learns from every clip's frames, so it is
    trained again, and the latents' shards follow (an encoding of stored frames), but no other
    shard's activation pass (issue 37: it did, when the latents lived in the activation shards).
    Undoing the change plans nothing again."""
    from speechneurons.shards import shard_of

    work, data, _, _ = demo_run
    copy = copy_of_finished(work, tmp_path)  # the same corpus folder, changed here and restored
    keep = tmp_path / "originals"
    shutil.copytree(data, keep)  # times kept
    added = data / "Actor_02/03-01-05-01-02-02-02.wav"
    victim = data / "Actor_05/03-01-05-01-01-01-05.wav"
    assert shard_of(added.name, 2) != shard_of(victim.name, 2)
    changes = {
        "add": (lambda: write_tone(added, seconds=1.0), lambda: added.unlink(), added),
        "replace": (lambda: write_tone(victim, seconds=1.2),
                    lambda: shutil.copy2(keep / victim.relative_to(data), victim), victim),
        "remove": (lambda: victim.unlink(),
                   lambda: shutil.copy2(keep / victim.relative_to(data), victim), victim),
    }
    try:
        for change, (do, undo, path) in changes.items():
            do()
            dry = snakemake(copy, repo, "-n", "--cores", "1")
            plan = scheduled(dry)
            assert plan["index_shard"] == 1 and plan["index"] == 1 and plan["sae_frames"] == 1, (change, plan)
            assert plan["sae_train"] == 1 and plan["sae_activations"] == 2, (change, plan)
            mine = str(shard_of(path.name, 2))
            assert planned_shards(dry, "index_shard") == planned_shards(dry, "sae_frames") == [mine]
            assert planned_shards(dry, "activations") == [mine], (change, plan)
            assert plan["selectivity"] == 1  # the clip set changed: the statistics follow
            undo()
            assert scheduled(snakemake(copy, repo, "-n", "--cores", "1")) == {}, change
    finally:
        added.unlink(missing_ok=True)
        shutil.copy2(keep / victim.relative_to(data), victim)


def planned_shards(done: subprocess.CompletedProcess, rule: str) -> list[str]:
    """The shard wildcard of each job of ``rule`` in a dry run's listing."""
    blocks = (done.stdout + done.stderr).split("\nrule ")
    return sorted(re.search(r"shard=(\d+)", block).group(1) for block in blocks
                  if block.startswith(f"{rule}:") and "shard=" in block)


def test_full_study_plans_few_jobs_quickly(repo, tmp_path):
    """The full-RAVDESS sweep (3 baselines x 2 lengths x 2 reductions, 24 shards), typed as the
    README says, plans in seconds, under 500 jobs, without the model at hand. The plan reads the
    corpus's names and bytes (a root that is not there stops it), not its audio: 1,440 empty files
    named as RAVDESS's stand in for it."""
    from speechneurons.datasets.ravdess import full_design

    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")  # the demo's: not read
    (tmp_path / "config").mkdir()
    study = yaml.safe_load((repo / "config/ravdess-full.yaml").read_text())
    study["dataset"]["root"] = str(tmp_path / "ravdess")
    (tmp_path / "config/ravdess-full.yaml").write_text(yaml.safe_dump(study))
    for clip in full_design().itertuples():
        path = tmp_path / "ravdess" / f"Actor_{clip.actor:02d}" / f"{clip.clip_id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    start = time.perf_counter()
    done = subprocess.run([SNAKEMAKE, "-n", "-s", str(repo / "Snakefile"), "--configfile",
                           "config/ravdess-full.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    plan = scheduled(done)
    assert time.perf_counter() - start < 30
    assert sum(plan.values()) <= 500
    assert plan["ablation"] == 24 * 12 and plan["activations"] == 24 and "tiny_model" not in plan
    assert plan["questions"] == 12


def test_profiles_load(repo, demo_root, tmp_path):
    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")
    (tmp_path / "override.yaml").write_text(yaml.safe_dump({"dataset": {"root": str(demo_root)}}))
    for profile in ("default", "slurm"):
        done = snakemake(tmp_path, repo, "-n", "--workflow-profile", str(repo / "profiles" / profile))
        assert "tiny_model" in scheduled(done)


def test_a_clip_that_fails_inside_jobs_is_listed_and_the_study_goes_on(demo_run, repo, tmp_path):
    """A 200-sample clip with a valid name, let through the index (min_duration_s: 0), fails in
    every activation and ablation job it meets; the run exits 0, the failed-clips table and the
    report say why, and the good clips' numbers equal those of the run without it."""
    work, data, _, _ = demo_run
    bad = "03-01-05-01-01-02-03"
    shutil.copytree(data, tmp_path / "ravdess")
    write_tone(tmp_path / "ravdess" / "Actor_03" / f"{bad}.wav", seconds=200 / 16_000)
    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")
    (tmp_path / "override.yaml").write_text(yaml.safe_dump(
        {"dataset": {"root": str(tmp_path / "ravdess"), "min_duration_s": 0.0}, **ONE_COMBINATION}))
    snakemake(tmp_path, repo, "--cores", "2")
    snakemake(tmp_path, repo, "--cores", "1", "--report", "results/report.html")
    failed = pd.read_parquet(tmp_path / f"{RUN}/tables/failed_clips.parquet")
    assert sorted(failed["stage"]) == ["ablation", "activations", "prosody", "sae_frames"]
    errors = failed.set_index("stage")["error"]
    assert set(failed["clip_id"]) == {bad}
    assert errors[["ablation", "activations", "sae_frames"]].str.contains("Kernel size").all()
    assert errors["prosody"].startswith("ValueError: Praat cannot analyse 0.0125 s of audio with a pitch floor of 75")
    assert failed.set_index("stage")["combination"].to_dict() == {"ablation": COMBO, "activations": "",
                                                                  "prosody": "", "sae_frames": ""}
    page = (tmp_path / f"{RUN}/figures/problems.html").read_text()
    assert "Clips that failed inside a job (4)" in page and bad in page
    assert "0 Rejected, failed, not computed" in (tmp_path / "results/report.html").read_text()

    def by_clip(pattern: str, root: Path) -> pd.DataFrame:
        table = pd.concat([pd.read_parquet(p) for p in sorted(root.glob(pattern))])
        return table.sort_values(list(table.columns[:4])).reset_index(drop=True)

    for pattern in [f"{RUN}/activations/shard-*.parquet", f"{RUN}/ablation/{COMBO}/summary/shard-*.parquet"]:
        pd.testing.assert_frame_equal(by_clip(pattern, tmp_path), by_clip(pattern, work), check_exact=True)
    for name in ["selectivity", "selected_units", f"{COMBO}/clip_unit_summary"]:
        path = f"{RUN}/tables/{name}.parquet"
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / path), pd.read_parquet(work / path),
                                      check_exact=True, obj=name)


def test_a_one_clip_study_runs_to_its_report_and_says_what_it_cannot_compute(demo_root, repo, tmp_path):
    """One clip: one speaker, one level of every factor, so the selection names no unit (with
    selection.require_selective, the default). An empty selection is a result: the ablation
    writes empty tables, the figures and pages say there was nothing to draw, and the report is
    written; the statistics are empty tables whose reasons the report shows."""
    clip = "03-01-01-01-01-01-01"
    (tmp_path / "one" / "Actor_01").mkdir(parents=True)
    shutil.copy(demo_root / "Actor_01" / f"{clip}.wav", tmp_path / "one" / "Actor_01")
    # a valid name but 12.5 ms of audio: the index rejects it (dataset.min_duration_s, 0.1 s)
    write_tone(tmp_path / "one" / "Actor_01" / "03-01-05-01-01-02-01.wav", seconds=200 / 16_000)
    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")
    (tmp_path / "override.yaml").write_text(yaml.safe_dump({
        "dataset": {"root": str(tmp_path / "one")},
        "stats": {"permutations": 99},
        "ablation": {"baselines": ["zero"], "segment_ms": [20]},
    }))
    snakemake(tmp_path, repo, "--cores", "2")
    snakemake(tmp_path, repo, "--cores", "1", "--report", "results/report.html")
    summary = pd.read_parquet(tmp_path / f"{RUN}/tables/{COMBO}/clip_unit_summary.parquet")
    assert summary.empty and {"clip_id", "site", "layer", "neuron", "abs_mass"} <= set(summary.columns)
    selectivity = pd.read_parquet(tmp_path / f"{RUN}/tables/selectivity.parquet")
    assert selectivity.empty and "F_speaker" in selectivity.columns
    assert pd.read_parquet(tmp_path / f"{RUN}/tables/selected_units.parquet").empty
    from speechneurons.provenance import notes_of

    assert notes_of(tmp_path / f"{RUN}/tables/selectivity.parquet")[-1].startswith(
        "selectivity: no factor has two levels")
    rejected = pd.read_parquet(tmp_path / "results/index/rejected.parquet")
    assert rejected["path"].tolist() == ["Actor_01/03-01-05-01-01-02-01.wav"]
    assert rejected["reason"].iloc[0].startswith("too short: 0.0125 s < dataset.min_duration_s = 0.1 s")
    page = (tmp_path / f"{RUN}/figures/problems.html").read_text()
    assert "Files the index rejected (1)" in page and "too short: 0.0125 s" in page
    assert "emotion: not tested, the 1 clip(s) have one level (neutral)" in page
    assert "selection: no unit selected" in page and "selection.require_selective: false ranks every unit" in page
    assert "Nothing to listen to" in (tmp_path / f"{RUN}/figures/{COMBO}/listening.html").read_text()
    # one speaker: nobody to judge an SAE on, so the layer has none, and the pages say why
    assert "sae: hidden layer 1 not trained: 1 speaker(s) with frames give 1 training and 0 held-out" in page
    assert pd.read_parquet(tmp_path / f"{RUN}/tables/sae_quality.parquet").empty
    for png in (tmp_path / "results").rglob("*.png"):
        assert png.with_suffix(".pdf").exists(), png
    report = (tmp_path / "results/report.html").read_text()
    assert "0 Rejected, failed, not computed" in report and "selectivity_heatmap.png" in report
    # the reliability checks run on what there is and say what they cannot compare
    trust = (tmp_path / f"{RUN}/figures/reliability.html").read_text()
    assert "Not compared: the study has one ablation combination" in trust
    assert "Not computed: no top-k unit was selected" in trust
    assert pd.read_parquet(tmp_path / f"{RUN}/tables/reliability/deletion.parquet").empty  # no unit to delete for


def test_a_null_study_selects_nothing_and_runs_to_its_report(repo, tmp_path):
    """Four actors say two emotions twice each, as tones whose pitch has nothing to do with the
    emotion: the speaker-general test runs (2 x 2 clips per actor) and finds no unit, so the
    selection is empty, and the study still runs to its report, saying why."""
    rng = np.random.default_rng(0)
    for actor in range(1, 5):
        for emotion in (1, 2):
            for statement in (1, 2):
                write_tone(tmp_path / "null" / f"Actor_{actor:02d}" /
                           f"03-01-{emotion:02d}-01-{statement:02d}-01-{actor:02d}.wav",
                           seconds=0.6, freq=float(rng.uniform(120, 300)))
    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")
    (tmp_path / "override.yaml").write_text(yaml.safe_dump({
        "dataset": {"root": str(tmp_path / "null")}, "stats": {"permutations": 99}, **ONE_COMBINATION}))
    snakemake(tmp_path, repo, "--cores", "2")
    snakemake(tmp_path, repo, "--cores", "1", "--report", "results/report.html")
    emotion = pd.read_parquet(tmp_path / f"{RUN}/tables/selectivity.parquet").query("factor == 'emotion'")
    assert (emotion["n_speakers_tested"] == 4).all() and emotion["p_perm"].notna().any()
    assert not emotion["selective"].any()
    assert pd.read_parquet(tmp_path / f"{RUN}/tables/selected_units.parquet").empty
    assert pd.read_parquet(tmp_path / f"{RUN}/tables/{COMBO}/clip_unit_summary.parquet").empty
    page = (tmp_path / f"{RUN}/figures/problems.html").read_text()
    assert "selection: no unit selected" in page
    assert (tmp_path / "results/report.html").stat().st_size > 0


def test_a_second_model_runs_only_its_own_jobs_and_is_compared_by_layer(demo_run, repo, tmp_path):
    """Adding a tiny HuBERT beside the finished tiny WavLM plans only the HuBERT's jobs (and the
    figure that compares the models); running it writes both models' folders side by side."""
    work, _, _, _ = demo_run
    models = {"models": [{"name_or_path": "results/models/tiny-wavlm", "build_tiny": True},
                         {"name_or_path": "results/models/tiny-hubert", "build_tiny": True,
                          "tiny_family": "hubert", "tiny_seed": 1}]}
    (work / "two-models.yaml").write_text(yaml.safe_dump(models))
    plan = scheduled(snakemake(work, repo, "-n", "--cores", "1", configs=("override.yaml", "two-models.yaml")))
    per_combo = {"ablation": 2, "aggregate": 1, "figures": 1, "questions": 1, "question_figures": 1,
                 "listening": 1, "unit_browser": 1, "unit_prosody": 1, "prosody_figures": 1}
    one_model = {"tiny_model": 1, "activations": 2, "selectivity": 1, "select_units": 1,
                 "layer_specialisation": 1, "selectivity_figures": 1, "problems": 1, "probes": 1,
                 "knockout_activations": 2, "knockout": 1, **{k: COMBOS * v for k, v in per_combo.items()},
                 **{f"reliability_{check}": 1 for check in ("agreement", "deletion", "randomisation",
                                                            "bootstrap", "report")},
                 "sae_frames": 2, "sae_train": 1, "sae_activations": 2, "sae_report": 1,
                 "neurons_vs_features": 1}
    assert plan == {**one_model, "models_by_layer": 1, "all": 1}
    # the same two models from scratch, in a folder of their own (the demo's stays as it was), as far
    # as the figures that compare them: activations, selectivity and probes of both
    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")
    shutil.copy(work / "override.yaml", tmp_path / "override.yaml")
    (tmp_path / "two-models.yaml").write_text(yaml.safe_dump(models))
    snakemake(tmp_path, repo, "--cores", "2", "results/figures/models_by_layer.png",
              configs=("override.yaml", "two-models.yaml"))
    from speechneurons.provenance import read_provenance

    for name in ("tiny-wavlm", "tiny-hubert"):
        table = tmp_path / f"results/model~{name}/tables/selectivity.parquet"
        assert len(pd.read_parquet(table)) == UNITS * 4
        assert read_provenance(table)["model"]["name_or_path"] == f"results/models/{name}"
    # the WavLM's numbers do not depend on the HuBERT beside it
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"{RUN}/tables/selectivity.parquet"),
                                  pd.read_parquet(work / f"{RUN}/tables/selectivity.parquet"),
                                  check_exact=True)
    hubert = pd.read_parquet(tmp_path / "results/model~tiny-hubert/tables/selectivity.parquet")
    assert not hubert[["F"]].equals(pd.read_parquet(work / f"{RUN}/tables/selectivity.parquet")[["F"]])
    for name in ("models_by_layer", "probes_by_model"):
        figure = tmp_path / f"results/figures/{name}.png"
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.with_suffix(".pdf").exists()
    assert len(pd.read_parquet(tmp_path / "results/model~tiny-hubert/tables/probes.parquet"))


def test_models_must_have_distinct_names(repo, demo_root, tmp_path):
    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")
    (tmp_path / "override.yaml").write_text(yaml.safe_dump({"dataset": {"root": str(demo_root)}, "models": [
        {"name_or_path": "org/model-a"}, {"name_or_path": "other/model-a"}]}))
    cmd = [SNAKEMAKE, "-n", "-s", str(repo / "Snakefile"), "--configfile", "config.yaml", "override.yaml"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "models[1] is named 'model-a' like an earlier model" in done.stdout + done.stderr

"""`speechneurons plan`: the config read as Snakemake reads it, the passes counted exactly, the
costs scaled from the measured ones, and the limits flagged."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import yaml

from speechneurons import cli, plan


@pytest.mark.parametrize("name", ["config.yaml", "config/ravdess-full.yaml", "config/cremad.yaml"])
def test_the_config_gets_the_defaults_snakemake_gives_it(repo, name):
    from snakemake.utils import validate

    raw = yaml.safe_load((repo / name).read_text())
    expected = yaml.safe_load((repo / name).read_text())
    validate(expected, str(repo / "schemas/config.schema.yaml"), set_default=True)
    assert plan.read_config(repo / name, repo) == expected and raw != expected


def test_passes_follow_the_design_and_costs_scale_from_the_measured_ones(repo):
    config = plan.read_config(repo / "config/ravdess-full.yaml", repo)
    corpus = plan.Corpus(clips=100, mean_seconds=2.0, basis="given")
    stages = {s.stage: s for s in plan.plan_stages(config, corpus, limit_hours=24, memory_gib=1000)}
    # 3 baselines x 2 reductions at 20 ms (1 + 100 passes) and at 100 ms (1 + 20)
    assert stages["ablation"].passes == 100 * 6 * (101 + 21) and stages["ablation"].jobs == 24 * 12
    seconds, cost = 100 * 6 * (101 * 2.0 + 21 * 2.0), plan.MEASURED["engine_cpu"][0]
    assert stages["ablation"].cpu_hours == pytest.approx(seconds * cost / 3600)  # a Base-shaped model
    assert stages["activations"].passes == 100
    # no SAE unless asked; asked, two trainings per layer at the bench's cost per step and evaluation
    assert not any(name.startswith("sae") for name in stages)
    sae = dict(config, sae={**config["sae"], "enabled": True, "layers": [4, 8]})
    with_sae = {s.stage: s for s in plan.plan_stages(sae, corpus, limit_hours=24, memory_gib=1000)}
    held_out = 200 * 0.25 / 0.02 / 66_000  # held-out frames against the bench's
    one = 20_000 * plan.MEASURED["sae_step_cpu"][0] + 40 * plan.MEASURED["sae_evaluation_cpu"][0] * held_out
    assert with_sae["sae: training"].cpu_hours == pytest.approx(2 * 2 * one / 3600)
    assert with_sae["sae: frames"].passes == 100 and with_sae["sae: training"].jobs == 2
    # the latents: each layer's frames (200 s of audio, 20 ms each) encoded at an evaluation's cost
    encode = 200 / 0.02 / 66_000 * plan.MEASURED["sae_evaluation_cpu"][0]
    assert with_sae["sae: latents"].cpu_hours == pytest.approx(2 * encode / 3600)
    assert with_sae["sae: latents"].passes == 0 and with_sae["sae: latents"].gpu_hours is None
    # Praat once per clip for every model: its measured seconds per second of audio
    assert stages["prosody (Praat)"].cpu_hours == pytest.approx(200 * plan.MEASURED["prosody_cpu"][0] / 3600)
    assert stages["prosody (Praat)"].model == "(every model)" and stages["prosody (Praat)"].gpu_hours is None
    assert stages["knockout"].passes == 100 * 13 * 8 * 4  # 13 hidden layers x 8 emotions x (1 + 3 random)
    speed = plan.MEASURED["engine_cpu"][0] / plan.ENGINE_CPU_THEN  # the machine's speed against then
    assert stages["knockout"].cpu_hours == pytest.approx(
        100 * plan.MEASURED["knockout_cpu"][0] * 2.0 * speed / 3600)  # the bench's 32 sets over 13 layers
    assert plan.probe_permutation_scale(2000) == 1.0 and 0.5 < plan.probe_permutation_scale(20) < 0.65
    assert stages["probes"].cpu_hours == pytest.approx(13 * plan.MEASURED["probes_cpu"][0] * 100 / 1440 / 3600
                                                       * plan.probe_permutation_scale(2000))
    assert "its name (a Base shape" in stages["ablation"].basis and not any(s.warning for s in stages.values())
    large = dict(config, model={"name_or_path": "microsoft/wavlm-large"})
    bigger = {s.stage: s for s in plan.plan_stages(large, corpus, 24, 1000)}
    assert bigger["ablation"].cpu_hours / stages["ablation"].cpu_hours == pytest.approx(315.5 / 94.4, rel=1e-3)
    assert bigger["knockout"].passes == 100 * 25 * 32


def test_a_stage_over_the_limits_is_flagged_and_the_table_says_what_it_rests_on(repo):
    config = plan.read_config(repo / "config/ravdess-full.yaml", repo)
    large = dict(config, model={"name_or_path": "microsoft/wavlm-large"})
    corpus = plan.Corpus(clips=7462, mean_seconds=2.5, basis="CREMA-D-sized")
    stages = {s.stage: s for s in plan.plan_stages(large, corpus, limit_hours=2, memory_gib=24)}
    assert not stages["selectivity"].warning  # it reads the cache in blocks within compute.memory_gib = 4
    assert "in about 18 blocks of units within compute.memory_gib = 4 (spilling 3.4 GiB" in stages["selectivity"].basis
    assert stages["ablation"].warning == "a job runs over 2 h on the CPU"  # not on one GPU
    roomy = dict(large, compute={**large["compute"], "memory_gib": 32})
    stages = {s.stage: s for s in plan.plan_stages(roomy, corpus, limit_hours=2, memory_gib=24)}
    assert stages["selectivity"].warning == "needs about 32 GiB (> 24)"  # the whole matrix would need 52
    text = plan.format_plan(list(stages.values()), corpus)
    assert "! needs about 32 GiB (> 24)" in text and "engine_cpu: bench/results/full-cpu-2026-12-04.json" in text


def test_clips_are_counted_under_the_root_and_the_cli_names_a_missing_config(repo, tmp_path, capsys):
    for i, seconds in enumerate([1.0, 2.0, 3.0]):
        sf.write(tmp_path / f"a{i}.wav", np.zeros(int(16_000 * seconds), dtype=np.float32), 16_000)
    (tmp_path / "notes.txt").write_text("not audio")
    config = {"dataset": {"name": "emodb", "root": str(tmp_path)}}
    corpus = plan.count_clips(config, None, None)
    assert (corpus.clips, corpus.mean_seconds) == (3, 2.0) and "3 readable audio files" in corpus.basis
    with pytest.raises(ValueError, match="give --clips and --mean-seconds for the emodb study"):
        plan.count_clips({"dataset": {"name": "emodb", "root": str(tmp_path / "absent")}}, None, None)
    assert cli.main(["plan", "--configfile", str(repo / "config/ravdess-full.yaml")]) == 0
    out = capsys.readouterr().out
    assert "clips: 1440 x 3.69 s" in out and "wavlm-base-plus    ablation" in out
    engine = tmp_path / "engine.json"  # bench/ablation_speed.py's report on a machine twice as fast
    engine.write_text('{"segments": 174, "parameters_m": 94.4, "clip_seconds": 3.47, "device": "cpu", '
                      '"threads": 8, "seconds": {"engine_all_units": %r}}' % (plan.MEASURED["engine_cpu"][0] * 175 * 3.47 / 2))
    before = plan.MEASURED["engine_cpu"]
    try:
        assert cli.main(["plan", "--configfile", str(repo / "config/ravdess-full.yaml"), "--engine-json", str(engine)]) == 0
        assert plan.MEASURED["engine_cpu"][0] == pytest.approx(before[0] / 2) and "8 threads" in capsys.readouterr().out
    finally:
        plan.MEASURED["engine_cpu"] = before
    assert cli.main(["plan", "--configfile", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    (tmp_path / "broken.yaml").write_text("dataset: [unclosed\n")
    assert cli.main(["plan", "--configfile", str(tmp_path / "broken.yaml")]) == 2
    assert "speechneurons plan: error:" in capsys.readouterr().err
    assert math.isclose(plan.RAVDESS_MEAN_SECONDS, 3.69, abs_tol=0.01)

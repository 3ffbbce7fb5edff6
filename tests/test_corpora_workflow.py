"""The whole DAG on every corpus's tiny tree, with that corpus's shipped config (config/<name>.yaml)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from corpus_trees import CORPORA, TREES, options
from speechneurons.provenance import notes_of, read_provenance
from snakemake_runs import snakemake

pytestmark = pytest.mark.workflow
COMBO = "baseline~zero/segment_ms~20/reduction~mean"


#: corpora whose report is rendered too (a report costs a Snakemake run; these two show every case)
REPORTED = {"cremad", "tess"}


@pytest.mark.parametrize("name", sorted(TREES))
def test_corpus_runs_the_whole_dag(name, tmp_path, repo, tiny_model_dir):
    root, valid, bad = TREES[name](tmp_path / "data")
    # the corpus's shipped study config where it has one, else the schema's defaults for the corpus
    config = repo / "config" / f"{name}.yaml"
    shipped = yaml.safe_load(config.read_text()) if config.exists() else {"dataset": {"name": name}}
    shipped["dataset"]["root"] = str(root)
    if options(name):  # the shipped config declares the design the tree is built for
        assert shipped["dataset"]["manifest"] == options(name)
    # the tiny model and small settings; everything else as shipped
    shipped["model"] = {"name_or_path": str(tiny_model_dir), "build_tiny": False}
    shipped["compute"] = {"shards": 1, "device": "cpu"}
    shipped["activations"] = {"sites": ["hidden"]}
    shipped["stats"] = {"permutations": 99, "mixed_top_units": 2}
    # a tiny random model has no selective unit: rank every unit (the filter is tested in test_stats)
    shipped["selection"] = {"top_k": 1, "random_controls": 1, "folds": 2, "require_selective": False}
    shipped["probes"] = {"folds": 2, "inner_folds": 2, "permutations": 4}
    # knock-out (a forward pass per clip and unit set) runs on the corpus that asks every question
    shipped["knockout"] = {"enabled": name == "cremad", "random_sets": 1}
    # one ablation combination (the demo config's lists would give four); the reliability checks run
    # on one corpus whose speakers differ in a group factor (the bootstrap then stratifies by it)
    shipped.setdefault("ablation", {}).update({"baselines": ["zero"], "segment_ms": [20]})
    shipped["reliability"] = {"enabled": name == "emodb", "bootstrap": {"resamples": 20}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(shipped, sort_keys=False))
    (tmp_path / "config.yaml").write_text((repo / "config.yaml").read_text())
    snakemake(tmp_path, repo, "--cores", "2", configs=("study.yaml",))
    if name in REPORTED:
        snakemake(tmp_path, repo, "--cores", "1", "--report", "results/report.html",
                  configs=("study.yaml",))

    clips = pd.read_parquet(tmp_path / "results/index/clips.parquet")
    rejected = pd.read_parquet(tmp_path / "results/index/rejected.parquet")
    assert len(clips) == valid and set(rejected["path"]) == set(bad)
    run = tmp_path / f"results/model~{tiny_model_dir.name}"
    selectivity = pd.read_parquet(run / "tables/selectivity.parquet")
    spec_factors = list(dict.fromkeys(selectivity["factor"]))
    target = "mood" if name == "manifest" else "emotion"
    assert spec_factors[0] == target and selectivity["n_speakers"].max() == clips["speaker"].nunique()
    chosen = pd.read_parquet(run / "tables/selected_units.parquet")
    assert set(chosen.loc[chosen["reason"] == "top_k", target]) == set(clips[target])
    encoding = pd.read_parquet(run / f"tables/{COMBO}/target_encoding.parquet")
    assert set(encoding[target]) == set(clips[target])
    group, graded, note = CORPORA[name].ASKED
    if name in REPORTED:  # report categories in the corpus's words
        html = (tmp_path / "results/report.html").read_text()
        for category in [f"2 {target.capitalize()} encoding", group, graded]:
            assert category in html, category
    problems = (run / "figures/problems.html").read_text()
    groups = pd.read_parquet(run / f"tables/{COMBO}/group_contrasts.parquet")
    effects = pd.read_parquet(run / f"tables/{COMBO}/graded_effects.parquet")
    probes = pd.read_parquet(run / "tables/probes.parquet")
    assert set(probes["factor"]) - {"speaker identity (control)"} <= set(spec_factors)
    assert (run / f"figures/{COMBO}/unit_browser.html").exists()
    if name == "cremad":
        knockout = pd.read_parquet(run / "tables/knockout.parquet")
        assert set(knockout["level"]) <= set(clips["emotion"]) and len(knockout)
    if name == "emodb":  # the bootstrap resamples speakers within each sex, in EmoDB's own levels
        units = pd.read_parquet(run / "tables/reliability/bootstrap_units.parquet")
        kept = units[units["fold"] == -1]  # the study-wide selection's stability
        assert set(kept["emotion"]) == set(clips["emotion"]) and kept["kept"].between(0, 1).all()
        tested = units[units["fold"] >= 0]  # the cross-fitted units, on their held-out speakers
        assert len(tested) and (tested["effect_low"].dropna() <= tested["effect"].dropna()).all()
        assert "Model randomisation" in (run / "figures/reliability.html").read_text()
    if note is None:  # both questions asked, and answered for every tested (fold, unit)
        cross = chosen[chosen["reason"] == "cross_fit"][["fold", "layer", "neuron"]].drop_duplicates()
        unchosen = chosen[chosen["reason"].isin(["explicit", "random_control"])][["layer", "neuron"]]
        assert len(groups) == len(cross) + len(unchosen.drop_duplicates())
        assert set(effects["measure"]) == {"attribution", "activation"}
    else:
        assert problems.count(note) == 1  # once, under the table it concerns
        asked, other = ("group_contrasts", "graded_effects")[:: 1 if note.startswith("question 4") else -1]
        assert any(note in n for n in notes_of(run / f"tables/{COMBO}/{asked}.parquet"))
        assert not any(note in n for n in notes_of(run / f"tables/{COMBO}/{other}.parquet"))
        # the figure reads why from the table's provenance, as data, not from the note's wording
        assert read_provenance(run / f"tables/{COMBO}/{asked}.parquet")["unanswered"].startswith(note)
        assert note not in read_provenance(run / f"tables/{COMBO}/{other}.parquet").get("unanswered", "")
        assert (groups.empty if note.startswith("question 4") else effects.empty)

"""The config schema is strict: a misspelled key fails before any job runs, naming the nearest valid one."""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from snakemake_runs import SNAKEMAKE

from speechneurons.config import (hop_ms, model_config, unit_range_errors, unknown_keys, unsafe_strings,
                                  user_baseline_file)


def schema(repo: Path) -> dict:
    return yaml.safe_load((repo / "schemas/config.schema.yaml").read_text())


def test_every_object_of_the_schema_is_closed(repo):
    def objects(node):
        if isinstance(node, dict):
            if node.get("type") == "object":
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)

    whole = schema(repo)
    found = list(objects(whole))
    assert len(found) >= 10
    # closed, or a map whose keys the corpus checks (filters: its factors; manifest factors: columns;
    # prosody.pitch_range: levels of its group factor)
    open_maps = [node for node in found if node.get("additionalProperties") is not False]
    assert all(isinstance(node.get("additionalProperties"), dict) for node in open_maps)
    assert len(open_maps) == 3
    sections = whole["properties"]["dataset"]["properties"]
    pitch_range = whole["properties"]["prosody"]["properties"]["pitch_range"]
    assert {id(sections["filters"]), id(sections["manifest"]["properties"]["factors"]), id(pitch_range)} == set(
        map(id, open_maps))


def test_unknown_keys_name_the_path_and_the_nearest_valid_key(repo):
    config = yaml.safe_load((repo / "config.yaml").read_text())
    assert unknown_keys(config, schema(repo)) == []
    config["modle"] = {}
    config["ablation"]["segments_ms"] = [20]
    config["stats"]["permutation"] = 10
    config["selection"]["explicit"] = [{"layer": 1, "neuronn": 3}]
    config["models"] = [{"name_or_path": "a/b", "revison": "x"}]  # through $defs/model
    messages = unknown_keys(config, schema(repo))
    assert len(messages) == 5
    assert any("'models[0].revison'; did you mean models[0].revision?" in m for m in messages)
    retired = unknown_keys({"probes": {"Cs": [0.01, 1.0], "max_iter": 300}}, schema(repo))
    assert retired == [
        "config key 'probes.Cs' is retired: the probes are ridge classifiers since issue 22 (a closed form, "
        "no C): give the penalties as probes.alphas, about 1 / C (Cs [0.01, 1.0] -> alphas [1.0, 100.0])",
        "config key 'probes.max_iter' is retired: the ridge probes of issue 22 have a closed form and no "
        "iterations: remove it"]
    assert any(m.startswith("unknown config key 'modle'; did you mean model?") for m in messages)
    assert any("'ablation.segments_ms'; did you mean ablation.segment_ms?" in m for m in messages)
    assert any("'stats.permutation'; did you mean stats.permutations?" in m for m in messages)
    assert any("'selection.explicit[0].neuronn'; did you mean selection.explicit[0].neuron?" in m
               for m in messages)


def test_a_misspelled_key_stops_snakemake_before_any_job(repo, tmp_path):
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump({"ablation": {"segments_ms": [40]}}))
    done = subprocess.run([SNAKEMAKE, "-n", "-s", str(repo / "Snakefile"), "--configfile",
                           str(repo / "config.yaml"), str(tmp_path / "typo.yaml")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "did you mean ablation.segment_ms?" in done.stdout + done.stderr


def dry_run(repo: Path, tmp_path: Path, override: dict, *extra: str) -> subprocess.CompletedProcess:
    """``snakemake -n`` of the demo config with ``override`` in ``tmp_path``, on the bundled clips
    unless the override names another dataset.root."""
    override = {**override, "dataset": {"root": str(repo / "data/ravdess-mini"), **override.get("dataset", {})}}
    (tmp_path / "override.yaml").write_text(yaml.safe_dump(override))
    return subprocess.run([SNAKEMAKE, "-n", "-s", str(repo / "Snakefile"), "--configfile",
                           str(repo / "config.yaml"), str(tmp_path / "override.yaml"), *extra],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})


def model_folder(path: Path, hidden: int = 32, layers: int = 2, ffn: int = 64) -> Path:
    """A model folder's two config files, no weights: all the early checks read."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({
        "model_type": "wavlm", "num_hidden_layers": layers, "hidden_size": hidden,
        "intermediate_size": ffn, "conv_stride": [5, 2, 2, 2, 2, 2, 2]}))
    (path / "preprocessor_config.json").write_text("{}")
    return path


def test_config_checks_without_snakemake(tmp_path):
    hostile = {"dataset": {"manifest": {"factors": {"mood": {"levels": ["calm", "<script>x</script>"]},
                                                    "<b>": {"levels": ["a"]}}}}}
    messages = unsafe_strings(hostile)
    assert messages[0].startswith("dataset.manifest.factors.mood.levels[1]: '<script>x</script>' holds < or >")
    assert messages[1].startswith("dataset.manifest.factors.<b>: the name '<b>' holds < or >")
    assert unsafe_strings({"a": ["x\" onerror=y", "it's & fine"]}) == []  # JSON-escaped by the report
    with pytest.raises(ValueError, match="model.name_or_path: no such folder './nowhere'"):
        model_config("./nowhere", "model.name_or_path")
    with pytest.raises(ValueError, match="no such folder 'models/wavlm/base'"):
        model_config("models/wavlm/base", "model.name_or_path")
    assert model_config("microsoft/wavlm-base-plus", "model.name_or_path") is None  # only the hub knows
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="has no preprocessor_config.json"):
        model_config(str(tmp_path / "half"), "model.name_or_path")
    found = model_config(str(model_folder(tmp_path / "m")), "model.name_or_path")
    assert hop_ms(found) == 20.0 and hop_ms(None) == 20.0
    assert unit_range_errors(found, {"layers": [0, 2], "neurons": [31], "sites": ["hidden"]}, "ablation") == []
    errors = unit_range_errors(found, {"layers": [3], "neurons": [40], "sites": ["hidden", "ffn"]}, "ablation")
    assert errors == ["ablation.layers [3]: the model has hidden layers 0..2 (ffn 1..2); pick layers in that range",
                      "ablation.neurons: 40 is past the hidden site's 32 units (0..31)"]
    assert user_baseline_file("zero") is None
    with pytest.raises(ValueError, match="'fn-nowhere_module.f': no module nowhere_module on the Python path"):
        user_baseline_file("fn-nowhere_module.f")


def test_a_renamed_key_is_read_under_its_new_name_and_both_names_fail():
    from speechneurons.config import apply_renamed_keys

    config = {"ablation": {"voicing_threshold_db": -30, "seed": 1}}
    assert apply_renamed_keys(config) == [
        "config: ablation.voicing_threshold_db is now called ablation.loudness_threshold_db (renamed in "
        "0.2.0; the old name is read until 0.3.0)"]
    assert config == {"ablation": {"seed": 1, "loudness_threshold_db": -30}}
    assert apply_renamed_keys({"ablation": {"seed": 1}}) == []
    with pytest.raises(ValueError, match="keep only ablation.loudness_threshold_db"):
        apply_renamed_keys({"ablation": {"voicing_threshold_db": -30, "loudness_threshold_db": -20}})


def test_the_study_models_are_named_and_checked_in_the_config_s_words():
    from speechneurons.study import model_key, question_categories, study_models

    one = {"model": {"name_or_path": "microsoft/wavlm-base-plus/", "build_tiny": False}}
    assert list(study_models(one)) == ["wavlm-base-plus"] and model_key(one, 0) == "model.name_or_path"
    several = {"models": [{"name_or_path": "a/m", "build_tiny": False},
                          {"name": "mine", "name_or_path": "b/m", "build_tiny": False}]}
    assert list(study_models(several)) == ["m", "mine"] and model_key(several, 1) == "models[1].name_or_path"
    with pytest.raises(ValueError, match="models\\[1\\] is named 'm' like an earlier model; give it a distinct"):
        study_models({"models": [{"name_or_path": "a/m"}, {"name_or_path": "b/m"}]})
    with pytest.raises(ValueError, match="name the model \\(model.name_or_path\\) or several"):
        study_models({"models": []})
    with pytest.raises(ValueError, match="model 'tiny' has build_tiny, so its name_or_path must be "
                                         "results/models/<folder>, not 'elsewhere/tiny'"):
        study_models({"model": {"name_or_path": "elsewhere/tiny", "build_tiny": True}})
    assert question_categories("emotion", "sex", "intensity") == {
        2: "2 Emotion encoding", 4: "4 Sex differences", 5: "5 Intensity effects"}
    assert question_categories("mood", None, None) == {
        2: "2 Mood encoding", 4: "4 Group differences", 5: "5 Graded effects"}


@pytest.mark.parametrize("override, message", [
    ({"ablation": {"segment_ms": [30]}},
     "ablation.segment_ms [30]: each must be a multiple of the model's 20 ms frame hop"),
    ({"model": {"name_or_path": "./no/such/model", "build_tiny": False}},
     "model.name_or_path: no such folder './no/such/model'"),
    ({"model": {"name_or_path": "MODEL", "build_tiny": False},
      "ablation": {"units_from": "config", "layers": [5], "neurons": [99]}},
     "ablation.layers [5]: the model has hidden layers 0..2"),
    # the demo's tiny model, not built yet: checked against its known shape
    ({"ablation": {"units_from": "config", "layers": [0, 3]}, "knockout": {"layers": [1]}},
     "ablation.layers [0, 3]: the model has hidden layers 0..2 (ffn 1..2)"),
    ({"knockout": {"enabled": True, "layers": [4]}},
     "knockout.layers [4]: the model has hidden layers 0..2"),
    ({"ablation": {"units_from": "config", "sites": ["ffn"], "neurons": [64]}},
     "ablation.neurons: 64 is past the ffn site's 64 units (0..63)"),
    ({"ablation": {"baselines": ["fn-missing_baseline.quiet"]}},
     "no module missing_baseline on the Python path"),
    ({"prosody": {"pitch_range": {"femal": [100, 500]}}},
     "prosody.pitch_range.femal: not a level of gender (its levels: male, female)"),
    ({"prosody": {"pitch_range": {"male": [300, 75]}}},
     "prosody.pitch_range.male: [300, 75]; give [floor, ceiling] in Hz with 0 < floor < ceiling"),
    ({"prosody": {"pitch_floor": 700}},
     "prosody: pitch_floor (700 Hz) must be above 0 and below pitch_ceiling (600 Hz)"),
    ({"dataset": {"root": "data/<img src=x onerror=alert(1)>"}},
     "dataset.root: 'data/<img src=x onerror=alert(1)>' holds < or >"),
    ({"sae": {"enabled": False}, "probes": {"sites": ["hidden", "sae"]}},
     "probes.sites asks for the sae site, but sae.enabled is false: set sae.enabled: true"),
    ({"figures": {"site": "sae", "layer": 2}},
     "figures.site: sae layer 2 has no SAE; sae.layers is [1]"),
    ({"ablation": {"units_from": "config", "sites": ["sae"], "neurons": [64]}},
     "ablation.neurons: 64 is past the sae site's 64 latents (sae.latents)"),
    # issue 37: what used to pass the plan and fail in a job, or never
    ({"dataset": {"root": "ROOT/data/ravdess-minj"}},
     "does not exist; the nearest folder that exists is ROOT/data, which holds ROOT/data/ravdess-mini "
     "(did you mean that?). Set dataset.root"),
    ({"dataset": {"root": "ROOT/README.md"}}, "README.md is a file, not a folder"),
    ({"dataset": {"root": "ROOT/docs"}}, "/docs holds no clip of corpus ravdess, which expects Actor_NN/"),
    ({"dataset": {"min_duration_s": 2.0, "max_duration_s": 1.5}},
     "dataset.min_duration_s (2 s) must be below dataset.max_duration_s (1.5 s)"),
    ({"ablation": {"segment_ms": [20.0]}}, "ablation.segment_ms[0]: 20.0 must be a whole number (write 20)"),
    ({"stats": {"permutations": 1000000000000}},
     "stats.permutations: 1000000000000 is above the largest value allowed, 1,000,000"),
    ({"probes": {"folds": 50}}, "probes.folds: 50 folds of speakers, but the corpus names 6 speaker(s)"),
    ({"selection": {"folds": 7}}, "selection.folds: 7 folds of speakers, but the corpus names 6 speaker(s)"),
    ({"ablation": {"reductions": ["mean", "frame-99999"]}},
     "ablation.reductions: frame-99999 starts at 1999.98 s, past any clip the index keeps"),
    ({"dataset": {"filters": {"emotion": ["surprised"]}}},
     "'emotion': ['surprised']} keep none of the 8 clip(s) named under"),
])
def test_config_errors_stop_snakemake_before_any_job(repo, tmp_path, override, message):
    if override.get("model", {}).get("name_or_path") == "MODEL":
        override["model"]["name_or_path"] = str(model_folder(tmp_path / "wavlm"))
    if "ROOT" in override.get("dataset", {}).get("root", ""):
        override["dataset"]["root"] = override["dataset"]["root"].replace("ROOT", str(repo))
        message = message.replace("ROOT", str(repo))
    done = dry_run(repo, tmp_path, override)
    assert done.returncode != 0 and message in done.stdout + done.stderr, done.stderr[-2000:]
    assert "Building DAG of jobs" not in done.stdout + done.stderr  # before any job is planned


def test_code_hashes_follow_every_imported_module(repo, tmp_path):
    """Changing a statement of any package module changes the code hash of every rule whose script
    imports it, directly or through other modules, and of no other rule; a comment, a docstring or
    a reformatting changes none (the hash is of the syntax tree); a script's statement changes its
    own hash only."""
    import shutil

    from speechneurons.codehash import code_hash, loads_corpus, script_modules, template_files

    shutil.copytree(repo / "speechneurons", tmp_path / "speechneurons",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(repo / "scripts", tmp_path / "scripts")
    scripts = sorted((tmp_path / "scripts").glob("*.py"))
    corpus = tmp_path / "speechneurons/datasets/emodb.py"  # the study's corpus, loaded by name

    def loaded(script):  # as rules/common.smk's code_version
        return [corpus] if loads_corpus(script) else []

    before = {s.stem: code_hash(s, tmp_path, loaded(s)) for s in scripts}
    uses = {s.stem: {*script_modules(s, tmp_path), *loaded(s),
                     *(script_modules(corpus, tmp_path) if loaded(s) else [])} for s in scripts}
    # modules the hand-kept lists used to miss are in: sharding, provenance, the corpus's levels
    assert tmp_path / "speechneurons/shards.py" in uses["activations"]
    assert tmp_path / "speechneurons/provenance.py" in uses["ablation"]
    assert corpus in uses["selectivity"] and corpus in uses["index"]
    assert tmp_path / "speechneurons/datasets/ravdess.py" not in uses["selectivity"]
    assert corpus not in uses["ablation"]
    assert tmp_path / "speechneurons/stats/repeated.py" in uses["questions"]  # two steps away
    # the model families are found by listing their folder: each file is in every model job's hash
    families = sorted((tmp_path / "speechneurons/models/families").glob("*.py"))
    assert len(families) == 6 and all(set(families) <= uses[s] for s in ("activations", "ablation"))

    def changed_by(path, comment):  # the scripts whose hash an edit of ``path`` changes
        original = path.read_bytes()
        path.write_bytes(original + comment)
        after = {s.stem: code_hash(s, tmp_path, loaded(s)) for s in scripts}
        path.write_bytes(original)
        return {name for name in after if after[name] != before[name]}

    for i, module in enumerate(sorted((tmp_path / "speechneurons").rglob("*.py"))):
        assert changed_by(module, b"\n_EDITED = 1\n") == {
            name for name, files in uses.items() if module in files}, module
        if i % 4 == 0:  # a quarter of them, for time: the tree has no comments
            assert changed_by(module, b"\n# a comment\n\n") == set(), module
    fdr = tmp_path / "speechneurons/stats/fdr.py"
    source = fdr.read_text()
    assert source.startswith('"""')
    edited = source.replace('"""', '"""One sentence more in the docstring.\n', 1)
    edited = edited.replace("def ", "def  ", 1).replace(" = ", "  =  ", 1)  # and some layout
    assert ast.dump(ast.parse(edited)) != ast.dump(ast.parse(source))  # the docstring is in the tree
    fdr.write_text(edited)
    assert {s.stem for s in scripts if code_hash(s, tmp_path, loaded(s)) != before[s.stem]} == set()
    fdr.write_text(source)
    for script in scripts:
        assert changed_by(script, b"\n_EDITED = 1\n") == {script.stem}, script
    # a page template reruns the jobs whose modules render it, through what it extends or imports
    pages = {name: set(template_files(sorted(files), tmp_path)) for name, files in uses.items()}
    templates = tmp_path / "speechneurons/templates"
    assert {name for name, used in pages.items() if templates / "problems.html" in used} == {"problems"}
    assert {name for name, used in pages.items() if templates / "player.html" in used} == {
        "listening", "unit_browser"}
    assert {name for name, used in pages.items() if templates / "base.html" in used} == {
        "listening", "unit_browser", "problems", "reliability_report", "prosody_figures", "sae_report"}
    for template in sorted(templates.glob("*.html")):
        assert changed_by(template, b"\n{# changed #}\n") == {
            name for name, used in pages.items() if template in used}, template
    # a family file added beside them reruns exactly the jobs that load a model
    added = tmp_path / "speechneurons/models/families/newfamily.py"
    added.write_text('"""A new family."""\n')
    assert {s.stem for s in scripts if code_hash(s, tmp_path, loaded(s)) != before[s.stem]} == {
        name for name, files in uses.items() if families[0] in files}


def plan_in(workdir: Path, repo: Path, *args: str) -> subprocess.CompletedProcess:
    """``snakemake -n ARGS`` in ``workdir`` as a user types it (no config file added)."""
    return subprocess.run([SNAKEMAKE, "-n", "-s", str(repo / "Snakefile"), *args], cwd=workdir,
                          capture_output=True, text=True, timeout=300)


def test_a_study_config_means_the_schema_defaults_not_the_demo(repo, tmp_path):
    """`--configfile config/emodb.yaml` plans the study with the schema's defaults for what the
    file does not set: the demo's config.yaml (here with a key no schema knows) is not read, and
    the study has one ablation combination (the default), not the demo's four. Without
    --configfile, config.yaml is the config."""
    from corpus_trees import TREES
    from snakemake_runs import scheduled

    root, _, _ = TREES["emodb"](tmp_path / "data")
    demo = yaml.safe_load((repo / "config.yaml").read_text())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**demo, "demo_only_key": 1}))
    study = yaml.safe_load((repo / "config/emodb.yaml").read_text())
    study["dataset"]["root"] = str(root)
    study["probes"] = {"folds": 4}  # the tree has 4 of EmoDB's 10 speakers
    (tmp_path / "emodb.yaml").write_text(yaml.safe_dump(study))
    done = plan_in(tmp_path, repo, "--configfile", "emodb.yaml")
    assert done.returncode == 0, done.stderr[-2000:]
    plan = scheduled(done)
    assert plan["aggregate"] == 1 and plan["index_shard"] == study["compute"]["shards"]
    assert "tiny_model" not in plan
    plain = plan_in(tmp_path, repo)
    assert plain.returncode != 0 and "unknown config key 'demo_only_key'" in plain.stdout + plain.stderr


def test_a_manifest_naming_columns_its_table_lacks_stops_before_any_job(repo, tmp_path):
    from corpus_trees import TREES
    from corpus_trees.manifest import OPTIONS as MANIFEST

    root, _, _ = TREES["manifest"](tmp_path / "data")
    manifest = {**MANIFEST, "factors": {**MANIFEST["factors"], "age": {"levels": [1, 2], "varies": "between"}}}
    done = dry_run(repo, tmp_path, {"dataset": {"name": "manifest", "root": str(root), "manifest": manifest}})
    out = done.stdout + done.stderr
    assert done.returncode != 0 and "Building DAG of jobs" not in out
    assert f"dataset.manifest.file {root / 'clips.tsv'}: no column(s) ['age']" in out, out[-2000:]
    missing = dry_run(repo, tmp_path, {"dataset": {"name": "manifest", "root": str(root),
                                                   "manifest": {**MANIFEST, "file": "other.tsv"}}})
    assert f"dataset.manifest.file: {root / 'other.tsv'} is not a file" in missing.stdout + missing.stderr


def test_settings_read_exactly_the_keys_their_rule_passes():
    from speechneurons.probes import ProbeSettings
    from speechneurons.reliability.randomisation import RandomisationSettings

    probes = {"folds": 4, "inner_folds": 2, "alphas": [1.0, 10.0], "permutations": 9, "seed": 3}
    settings = ProbeSettings.from_config(probes)
    assert settings == ProbeSettings(folds=4, inner_folds=2, alphas=(1.0, 10.0), permutations=9, seed=3)
    # a key the class does not read, or a setting the rule did not pass, names the section's key
    with pytest.raises(ValueError, match=r"no setting probes\.sites"):
        ProbeSettings.from_config({**probes, "sites": ["hidden"]})
    with pytest.raises(ValueError, match=r"probes\.seed was not passed"):
        ProbeSettings.from_config({k: v for k, v in probes.items() if k != "seed"})
    # another section's setting comes as a keyword; `layers: all` is None
    cascade = RandomisationSettings.from_config({"clips": 2, "units": 4, "layers": "all", "threshold": 0.5},
                                                seed=7)
    assert cascade.layers is None and cascade.seed == 7
    assert RandomisationSettings.from_config({"clips": 2, "units": 4, "layers": [1, 2], "threshold": 0.5},
                                             seed=7).layers == (1, 2)


def test_one_combination_names_the_folder_the_params_and_the_columns():
    from speechneurons.combination import FOLDER, Combination, combination_grid

    grid = combination_grid({"baselines": ["zero", "mean"], "segment_ms": [20, 100], "reductions": ["mean"]})
    assert [c.label for c in grid] == ["zero, 20 ms, mean", "zero, 100 ms, mean", "mean, 20 ms, mean",
                                       "mean, 100 ms, mean"]
    first = grid[0]
    assert first.folder == "baseline~zero/segment_ms~20/reduction~mean" == FOLDER.format(**first.columns())
    # from a job's wildcards (strings) it is the same combination
    assert Combination.from_config({"baseline": "zero", "segment_ms": "20", "reduction": "mean",
                                    "model": "m", "shard": "0"}) == first

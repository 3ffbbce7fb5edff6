"""The config schema is strict: a misspelled key fails before any job runs, naming the nearest valid one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from speechneurons.config import unknown_keys


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
    # closed, or a map whose keys the corpus checks (filters: its factors; manifest factors: columns)
    open_maps = [node for node in found if node.get("additionalProperties") is not False]
    assert all(isinstance(node.get("additionalProperties"), dict) for node in open_maps)
    assert len(open_maps) == 2
    sections = whole["properties"]["dataset"]["properties"]
    assert {id(sections["filters"]), id(sections["manifest"]["properties"]["factors"])} == set(
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
    assert any(m.startswith("unknown config key 'modle'; did you mean model?") for m in messages)
    assert any("'ablation.segments_ms'; did you mean ablation.segment_ms?" in m for m in messages)
    assert any("'stats.permutation'; did you mean stats.permutations?" in m for m in messages)
    assert any("'selection.explicit[0].neuronn'; did you mean selection.explicit[0].neuron?" in m
               for m in messages)


def test_a_misspelled_key_stops_snakemake_before_any_job(repo, tmp_path):
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump({"ablation": {"segments_ms": [40]}}))
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    done = subprocess.run([snakemake, "-n", "-s", str(repo / "Snakefile"), "--configfile",
                           str(repo / "config.yaml"), str(tmp_path / "typo.yaml")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "did you mean ablation.segment_ms?" in done.stdout + done.stderr


def test_code_hashes_follow_every_imported_module(repo, tmp_path):
    """Changing any package module changes the code hash of every rule whose script imports it,
    directly or through other modules, and of no other rule."""
    import shutil

    from speechneurons.codehash import code_hash, imports_name, script_modules

    shutil.copytree(repo / "speechneurons", tmp_path / "speechneurons",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(repo / "scripts", tmp_path / "scripts")
    scripts = sorted((tmp_path / "scripts").glob("*.py"))
    corpus = tmp_path / "speechneurons/datasets/emodb.py"  # the study's corpus, loaded by name

    def loaded(script):  # as rules/common.smk's code_version
        return [corpus] if imports_name(script, "speechneurons.datasets", "load_corpus") else []

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
    for module in sorted((tmp_path / "speechneurons").rglob("*.py")):
        original = module.read_bytes()
        module.write_bytes(original + b"\n# changed\n")
        after = {s.stem: code_hash(s, tmp_path, loaded(s)) for s in scripts}
        module.write_bytes(original)
        changed = {name for name in after if after[name] != before[name]}
        assert changed == {name for name, files in uses.items() if module in files}, module

"""Config checks the JSON schema cannot phrase well: a misspelled key, with the nearest valid one.

The schema (``schemas/config.schema.yaml``) forbids unknown keys at every
level (``additionalProperties: false``); jsonschema then says only that a
property "was unexpected". :func:`unknown_keys` walks the config beside the
schema and names each unknown key by its full path and the closest valid
spelling, so ``ablation.segments_ms`` fails before any job runs with "did you
mean ablation.segment_ms?". The other checks here also run while Snakemake
reads the config: strings the report would run as HTML, model folders and
their ``config.json`` (read without weights) against the asked segment
lengths, layers and neurons, and user baseline modules. Pure Python: the
Snakefile imports it.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
from pathlib import Path
from typing import Any


#: config keys renamed in 0.2.0 (old path -> new key in the same section); the old name is read
#: until 0.3.0. voicing_threshold_db decided loudness, not voicing (a loud consonant counts).
RENAMED_KEYS = {"ablation.voicing_threshold_db": "loudness_threshold_db"}

#: config keys that no longer mean anything, with what to do instead (named when a config has one)
RETIRED_KEYS = {
    "probes.Cs": "the probes are ridge classifiers since issue 22 (a closed form, no C): give the "
                 "penalties as probes.alphas, about 1 / C (Cs [0.01, 1.0] -> alphas [1.0, 100.0])",
    "probes.max_iter": "the ridge probes of issue 22 have a closed form and no iterations: remove it",
}


def apply_renamed_keys(config: dict[str, Any]) -> list[str]:
    """Move each old key of :data:`RENAMED_KEYS` in ``config`` to its new name, in place; one
    message per key moved. ValueError when both the old and the new name are given."""
    messages = []
    for old, new in RENAMED_KEYS.items():
        section, key = old.rsplit(".", 1)
        values = config.get(section)
        if not isinstance(values, dict) or key not in values:
            continue
        if new in values:
            raise ValueError(f"config: {old} and {section}.{new} are both given; {old} was renamed "
                             f"{section}.{new} in 0.2.0: keep only {section}.{new}")
        values[new] = values.pop(key)
        messages.append(f"config: {old} is now called {section}.{new} (renamed in 0.2.0; the old name "
                        "is read until 0.3.0)")
    return messages


def resolved(schema: dict, root: dict) -> dict:
    """``schema`` with its local references (``$ref: "#/$defs/model"``) followed within ``root``."""
    while "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def unknown_keys(config: Any, schema: dict, where: str = "", root: dict | None = None) -> list[str]:
    """One message per key of ``config`` that ``schema`` does not declare, at any depth.

    Local references (``$ref: "#/$defs/model"``) are followed within ``root``
    (the whole schema; ``schema`` itself at the top).
    """
    root = schema if root is None else root
    schema = resolved(schema, root)
    messages: list[str] = []
    if isinstance(config, dict) and "properties" in schema:
        known = schema["properties"]
        for key, value in config.items():
            path = f"{where}.{key}" if where else str(key)
            if key not in known:
                if path in RETIRED_KEYS:
                    messages.append(f"config key {path!r} is retired: {RETIRED_KEYS[path]}")
                elif schema.get("additionalProperties", True) is False:
                    close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.5)
                    hint = f"; did you mean {where + '.' if where else ''}{close[0]}?" if close else ""
                    messages.append(f"unknown config key {path!r}{hint} "
                                    f"(valid here: {', '.join(sorted(known))})")
                continue
            messages += unknown_keys(value, known[key], path, root)
    elif isinstance(config, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(config):
            messages += unknown_keys(item, schema["items"], f"{where}[{i}]", root)
    return messages


#: characters that would let a config string end the report's <script> blocks or open a tag:
#: Snakemake's report embeds job params (every config value that reaches a rule) as raw JSON
UNSAFE = set("<>")


def unsafe_strings(config: Any, where: str = "") -> list[str]:
    """One message per key or string value of ``config`` holding ``<`` or ``>``, by its path."""
    messages: list[str] = []
    items = (config.items() if isinstance(config, dict)
             else enumerate(config) if isinstance(config, list) else [])
    for key, value in items:
        path = f"{where}.{key}" if where and isinstance(key, str) else (
            f"{where}[{key}]" if where else str(key))
        if isinstance(key, str) and UNSAFE & set(key):
            messages.append(f"{path}: the name {key!r} holds < or >, which the Snakemake report would "
                            "run as HTML; rename it")
        if isinstance(value, str) and UNSAFE & set(value):
            messages.append(f"{path}: {value!r} holds < or >, which the Snakemake report would run as "
                            "HTML; rename it (in the config and in the data it names)")
        messages += unsafe_strings(value, path)
    return messages


#: a hub model id: name or owner/name (letters, digits, - _ .)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")


def model_config(name_or_path: str, key: str) -> dict | None:
    """The model's ``config.json`` read without loading weights, or None when only the hub has it.

    A folder must exist and hold config.json and preprocessor_config.json; a
    hub name must parse as one (its config is read from the local Hugging
    Face cache when there). ValueError says what is wrong in ``key``'s words.
    """
    path = Path(name_or_path).expanduser()
    looks_like_folder = path.is_absolute() or name_or_path.startswith((".", "~")) or (
        name_or_path.count("/") > 1) or path.exists()
    if looks_like_folder or not HUB_ID.match(name_or_path):
        if not path.is_dir():
            raise ValueError(f"{key}: no such folder {name_or_path!r} (and not a hub name such as "
                             "microsoft/wavlm-base-plus); check the path")
        missing = [f for f in ("config.json", "preprocessor_config.json") if not (path / f).is_file()]
        if missing:
            raise ValueError(f"{key}: folder {name_or_path} has no {' or '.join(missing)}; a model "
                             "folder is what save_pretrained writes (a model and its feature extractor)")
        return json.loads((path / "config.json").read_text())
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name_or_path, "config.json")
    except Exception:  # noqa: BLE001 - any cache problem: leave the check to the job
        return None
    return json.loads(Path(cached).read_text()) if isinstance(cached, str) else None


def unit_range_errors(model: dict, section: dict, key: str, sites: tuple = ("hidden", "ffn")) -> list[str]:
    """Layers and neurons of ``section`` (``ablation`` or ``knockout``) outside the model's config."""
    layers = int(model.get("num_hidden_layers", 0))
    width = {"hidden": int(model.get("hidden_size", 0)), "ffn": int(model.get("intermediate_size", 0))}
    errors = []
    asked = section.get("layers", "all")
    if asked != "all":
        top = max(asked)
        lowest = 1 if section.get("sites") == ["ffn"] else 0
        if top > layers or min(asked) < lowest:
            errors.append(f"{key}.layers {asked}: the model has hidden layers 0..{layers} "
                          f"(ffn 1..{layers}); pick layers in that range")
    neurons = section.get("neurons", "all")
    if neurons != "all":
        for site in section.get("sites", sites):
            if site in width and width[site] and max(neurons) >= width[site]:
                errors.append(f"{key}.neurons: {max(neurons)} is past the {site} site's "
                              f"{width[site]} units (0..{width[site] - 1})")
    return errors


def sae_site_errors(config: dict) -> list[str]:
    """Keys that ask for the ``sae`` site that the ``sae`` section does not give: sae disabled, or
    a layer without an SAE; in the config's words, before any job."""
    sae = config.get("sae", {})
    layers = set(sae.get("layers", [])) if sae.get("enabled") else set()
    asked = []
    if config["ablation"].get("units_from") == "config" and "sae" in config["ablation"]["sites"]:
        asked.append(("ablation.sites", None))
    if config["probes"].get("enabled") and "sae" in config["probes"]["sites"]:
        asked.append(("probes.sites", None))
    if config["figures"].get("site") == "sae":
        asked.append(("figures.site", config["figures"].get("layer")))
    asked += [(f"selection.explicit[{i}]", unit["layer"])
              for i, unit in enumerate(config["selection"].get("explicit", [])) if unit.get("site") == "sae"]
    errors = []
    for key, layer in asked:
        if not sae.get("enabled"):
            errors.append(f"{key} asks for the sae site, but sae.enabled is false: set sae.enabled: true "
                          f"(and sae.layers) to train the SAEs, or drop sae from {key}")
        elif layer is not None and layer not in layers:
            errors.append(f"{key}: sae layer {layer} has no SAE; sae.layers is {sorted(layers)}")
    neurons, latents = config["ablation"].get("neurons", "all"), sae.get("latents", 4096)
    if ("ablation.sites", None) in asked and sae.get("enabled") and neurons != "all" and max(neurons) >= latents:
        errors.append(f"ablation.neurons: {max(neurons)} is past the sae site's {latents} latents (sae.latents)")
    return errors


def number_errors(config: Any, schema: dict, where: str = "", root: dict | None = None) -> list[str]:
    """One message per number outside what the schema allows, by its config path: a value the
    schema wants whole (``type: integer``) given as a float such as ``20.0`` (JSON Schema counts
    it as an integer; a path or a range would not), or one past ``minimum`` / ``maximum`` (with
    the key's description, which says why the bound is there)."""
    root = schema if root is None else root
    schema = resolved(schema, root)
    messages: list[str] = []
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if isinstance(config, (int, float)) and not isinstance(config, bool):
        if isinstance(config, float) and "integer" in kinds and "number" not in kinds:
            whole = f"{config:.0f}" if config.is_integer() else f"a whole number near {config:g}"
            messages.append(f"{where}: {config!r} must be a whole number (write {whole})")
        why = f": {schema['description']}" if "description" in schema else ""
        if "maximum" in schema and config > schema["maximum"]:
            messages.append(f"{where}: {config!r} is above the largest value allowed, {schema['maximum']:,}{why}")
        if "minimum" in schema and config < schema["minimum"]:
            messages.append(f"{where}: {config!r} is below the smallest value allowed, {schema['minimum']}{why}")
    elif isinstance(config, dict) and "properties" in schema:
        for key, value in config.items():
            if key in schema["properties"]:
                messages += number_errors(value, schema["properties"][key], f"{where}.{key}" if where else key, root)
    elif isinstance(config, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(config):
            messages += number_errors(item, schema["items"], f"{where}[{i}]", root)
    return messages


def study_errors(config: dict, speakers: int) -> list[str]:
    """Settings that cannot work together or with the corpus's ``speakers`` (named under the
    root, after dataset.filters), in the config's words: before any job."""
    dataset, errors = config["dataset"], []
    if dataset["min_duration_s"] >= dataset["max_duration_s"]:
        errors.append(f"dataset.min_duration_s ({dataset['min_duration_s']:g} s) must be below "
                      f"dataset.max_duration_s ({dataset['max_duration_s']:g} s): every clip would be rejected")
    if speakers < 2:  # nothing is folded: the study runs and its pages say what it cannot compute
        return errors
    folded = [("selection.folds", config["selection"]["folds"])]
    if config["probes"]["enabled"]:
        folded.append(("probes.folds", config["probes"]["folds"]))
    for key, folds in folded:
        if folds > speakers:
            errors.append(f"{key}: {folds} folds of speakers, but the corpus names {speakers} speaker(s) "
                          f"under dataset.root (after dataset.filters); give at most {speakers}")
    return errors


def reduction_errors(reductions: list[str], hop: float, max_duration_s: float) -> list[str]:
    """``frame-N`` or ``time-S`` reductions that start past the longest clip the index keeps."""
    errors = []
    for spelling in reductions:
        kind, _, value = spelling.partition("-")
        start_s = int(value) * hop / 1000 if kind == "frame" else float(value) if kind == "time" else 0.0
        if start_s >= max_duration_s:
            errors.append(f"ablation.reductions: {spelling} starts at {start_s:g} s, past any clip the index "
                          f"keeps (dataset.max_duration_s = {max_duration_s:g} s, {hop:g} ms per frame)")
    return errors


def hop_ms(model: dict | None, sample_rate: int = 16_000) -> float:
    """The model's frame hop in ms: the product of its conv strides (20 ms for every family here)."""
    strides = (model or {}).get("conv_stride", [5, 2, 2, 2, 2, 2, 2])
    hop = 1
    for stride in strides:
        hop *= int(stride)
    return 1000 * hop / sample_rate


def user_baseline_file(spec: str) -> Path | None:
    """The file of an ``fn-module.function`` baseline's module (None for a built-in baseline).

    Found on the Python path without running the module; ValueError names
    the baseline when there is no such module.
    """
    match = re.match(r"^fn-([A-Za-z_][\w.]*)\.([A-Za-z_]\w*)$", spec)
    if not match:
        return None
    module = match.group(1)
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as err:
        found, why = None, str(err)
    else:
        why = "not found"
    if found is None or not found.origin or not Path(found.origin).is_file():
        raise ValueError(f"ablation.baselines: {spec!r}: no module {module} on the Python path "
                         f"({why}); put its folder on PYTHONPATH or install it")
    return Path(found.origin)

# The config: validated against the schema, then checked in the user's words (a misspelled key,
# a corpus design, model folders, layers and neurons), all before the first job. Describes the DAG
# only: nothing here imports torch (speechneurons.config, .study and .datasets are plain Python).
from pathlib import Path

import yaml
from snakemake.logging import logger
from snakemake.utils import min_version, validate

from speechneurons.config import (
    apply_renamed_keys,
    hop_ms,
    model_config,
    number_errors,
    reduction_errors,
    sae_site_errors,
    study_errors,
    unit_range_errors,
    unknown_keys,
    unsafe_strings,
    user_baseline_file,
)
from speechneurons.datasets import load_corpus
from speechneurons.datasets.index import IndexFilters, root_errors
from speechneurons.prosody import ProsodySettings, pitch_range_errors
from speechneurons.sae import SAESettings
from speechneurons.study import model_key, study_models
from speechneurons.tiny_shape import TINY_SHAPE

min_version("9.0")

# The original guide's spelling: snakemake --config ravdess_path=/path/to/ravdess
if "ravdess_path" in config:
    config.setdefault("dataset", {})["root"] = config["ravdess_path"]
# a key renamed in this release is read under its new name, and the run says so
for _message in apply_renamed_keys(config):
    logger.warning(_message)

# a misspelled key fails here, naming it and the nearest valid key, before any job runs; so does a
# number out of its range or a float where a whole number goes (ablation.segment_ms: [20.0])
_schema = yaml.safe_load(
    (Path(workflow.basedir) / "schemas/config.schema.yaml").read_text()
)
_unknown = unknown_keys(config, _schema) or number_errors(config, _schema)
if _unknown:
    raise ValueError("config: " + "\n".join(_unknown))
validate(config, "../schemas/config.schema.yaml", set_default=True)
# Snakemake's report embeds every job's params in a <script> block: no config string may end it
_unsafe = unsafe_strings(config)
if _unsafe:
    raise ValueError("config: " + "\n".join(_unsafe))

DATASET = config["dataset"]
# The corpus's design (speaker, factors, levels, roles): every script gets it as a param, and a
# corpus that does not exist, a manifest that declares no valid design or names columns its table
# lacks, or a filter the corpus lacks fails here, before any job runs.
CORPUS = {"name": DATASET["name"], "manifest": DATASET.get("manifest") or {}}
_corpus = load_corpus(CORPUS["name"], CORPUS["manifest"])
SPEC = _corpus.spec
# The root read by names alone (no audio): missing, not a folder, unreadable, holding no clip of the
# corpus or none that dataset.filters keep all stop here; so a typo or an unmounted disk never
# reaches a job (whose failure would delete outputs), and the study's speakers are known.
# a manifest's table and its header first (nothing when the root is not a folder)
_root_errors = _corpus.check_root(DATASET["root"])
_speakers = 0
if not _root_errors:
    _root_errors, _speakers = root_errors(
        _corpus, DATASET["root"], IndexFilters.from_config(DATASET["filters"], SPEC)
    )
_root_errors += study_errors(config, _speakers)
if _root_errors:
    raise ValueError("config: " + "\n".join(_root_errors))
COMPUTE = config["compute"]
# what a job that reads the whole activation cache may hold (blocks of units sized to it); a
# resource, not a param: it changes how a table is computed, never what it holds
CACHE_MEM_MB = int(COMPUTE["memory_gib"] * 1024)
ABLATION = config["ablation"]
FIGURES = config["figures"]
ACTIVATIONS_CFG = config["activations"]
STATS = config["stats"]
SELECTION = config["selection"]
PROBES_CFG = config["probes"]
KNOCKOUT_CFG = config["knockout"]
BROWSER_CFG = config["browser"]
RELIABILITY_CFG = config["reliability"]
PROSODY_CFG = config["prosody"]
SAE_CFG = config["sae"]
# the keys sae_train reads (speechneurons.sae.SAESettings); site and layers shape the DAG
SAE_TRAINING = {
    k: v
    for k, v in SAE_CFG.items()
    if k not in ("enabled", "site", "layers", "compare_top_k")
}
SAESettings.from_config(
    SAE_TRAINING
)  # k above latents, a share outside (0, 1): before any job
# Praat's pitch ranges: a floor above its ceiling, or a range for a group level the corpus lacks
_pitch_errors = pitch_range_errors(
    ProsodySettings.from_config(PROSODY_CFG),
    SPEC.group,
    SPEC.levels(SPEC.group) if SPEC.group else [],
)
if _pitch_errors:
    raise ValueError("config: " + "\n".join(_pitch_errors))
_sae_errors = sae_site_errors(config)
if _sae_errors:
    raise ValueError("config: " + "\n".join(_sae_errors))

# The study's models by name (`models`, else `model`); each writes under results/model~<name>/.
MODELS = study_models(config)
MODEL_NAMES = list(MODELS)


def _check_models_against_config():
    """Segment lengths, layers and neurons against each model's config.json (no weights loaded; a
    tiny model the workflow builds has TINY_SHAPE) and model folders that exist: before any job, in
    the config's words."""
    errors = []
    for i, (name, model) in enumerate(MODELS.items()):
        key = model_key(config, i)
        found = (
            TINY_SHAPE
            if model["build_tiny"]
            else model_config(str(model["name_or_path"]), key)
        )
        hop = hop_ms(found)
        errors += reduction_errors(
            ABLATION["reductions"], hop, DATASET["max_duration_s"]
        )
        bad = [ms for ms in ABLATION["segment_ms"] if ms % hop]
        if bad:
            errors.append(
                f"ablation.segment_ms {bad}: each must be a multiple of the model's {hop:g} ms "
                f"frame hop (model {name}), e.g. {[int(hop * max(1, round(ms / hop))) for ms in bad]}"
            )
        if found is not None and ABLATION["units_from"] == "config":
            errors += [
                f"{e} (model {name})"
                for e in unit_range_errors(found, ABLATION, "ablation")
            ]
        if found is not None and SAE_CFG["enabled"]:
            errors += [
                f"{e} (model {name})"
                for e in unit_range_errors(
                    found,
                    {"layers": SAE_CFG["layers"], "sites": [SAE_CFG["site"]]},
                    "sae",
                )
            ]
        if found is not None and KNOCKOUT_CFG["enabled"]:
            errors += [
                f"{e} (model {name})"
                for e in unit_range_errors(
                    found,
                    {"layers": KNOCKOUT_CFG["layers"], "sites": ["hidden"]},
                    "knockout",
                )
            ]
    if errors:
        raise ValueError("config: " + "\n".join(dict.fromkeys(errors)))


_check_models_against_config()
#: fn-module.function baselines -> their module's file, whose content joins the ablation code hash
BASELINE_FILES = {b: user_baseline_file(b) for b in ABLATION["baselines"]}
# tiny models the workflow builds, by their folder under results/models/
TINY = {Path(m["name_or_path"]).name: m for m in MODELS.values() if m["build_tiny"]}

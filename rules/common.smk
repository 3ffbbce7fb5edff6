# Config validation, path patterns and input functions. Describes the DAG only:
# nothing here imports torch (speechneurons.config and .codehash are plain Python).
import re
from pathlib import Path

import yaml
from snakemake.utils import min_version, validate

from speechneurons.codehash import code_hash
from speechneurons.config import unknown_keys

min_version("9.0")

# The seed guide's spelling: snakemake --config ravdess_path=/path/to/ravdess
if "ravdess_path" in config:
    config.setdefault("dataset", {})["root"] = config["ravdess_path"]

# a misspelled key fails here, naming it and the nearest valid key, before any job runs
_unknown = unknown_keys(config, yaml.safe_load((Path(workflow.basedir) / "schemas/config.schema.yaml").read_text()))
if _unknown:
    raise ValueError("config: " + "\n".join(_unknown))
validate(config, "../schemas/config.schema.yaml", set_default=True)

DATASET = config["dataset"]
COMPUTE = config["compute"]
ABLATION = config["ablation"]
FIGURES = config["figures"]
ACTIVATIONS_CFG = config["activations"]
STATS = config["stats"]
SELECTION = config["selection"]

# The study's models: `models` (a list), else `model` (one). Each writes under results/model~<name>/.
_model_list = config.get("models") or ([config["model"]] if config.get("model") else [])
if not _model_list:
    raise ValueError("config: name the model (model.name_or_path) or several (models: a list)")
MODELS = {}
for _i, _model in enumerate(_model_list):
    _name = _model.get("name") or Path(str(_model["name_or_path"]).rstrip("/")).name
    if _name in MODELS:
        raise ValueError(f"config: models[{_i}] is named {_name!r} like an earlier model; give it a "
                         "distinct models[].name")
    if _model["build_tiny"] and Path(_model["name_or_path"]).parent.as_posix() != "results/models":
        raise ValueError(f"config: model {_name!r} has build_tiny, so its name_or_path must be "
                         f"results/models/<folder>, not {_model['name_or_path']!r}")
    MODELS[_name] = _model
MODEL_NAMES = list(MODELS)
# tiny models the workflow builds, by their folder under results/models/
TINY = {Path(m["name_or_path"]).name: m for m in MODELS.values() if m["build_tiny"]}

SHARDS = list(range(COMPUTE["shards"]))
# One folder per ablation parameter combination, named by its values, so that
# adding a value to a list runs only the new combination's jobs.
COMBO = "baseline~{baseline}/segment_ms~{segment_ms}/reduction~{reduction}"

INDEX_CLIPS = "results/index/clips.parquet"
INDEX_REJECTED = "results/index/rejected.parquet"
# everything computed from a model's activations lives in its own folder
RUN = "results/model~{model}"
LOGS = "results/logs/model~{model}"
ACTIVATIONS = f"{RUN}/activations/shard-{{shard}}.parquet"
ACTIVATION_FRAMES = f"{RUN}/activations/frames/shard-{{shard}}.safetensors"
ACTIVATIONS_FAILED = f"{RUN}/activations/failed/shard-{{shard}}.parquet"
SELECTIVITY = f"{RUN}/tables/selectivity.parquet"
REPLICATION = f"{RUN}/tables/replication.parquet"
SELECTED_UNITS = f"{RUN}/tables/selected_units.parquet"
ATTRIBUTIONS = f"{RUN}/ablation/{COMBO}/attributions/shard-{{shard}}.safetensors"
SEGMENTS = f"{RUN}/ablation/{COMBO}/segments/shard-{{shard}}.parquet"
SUMMARIES = f"{RUN}/ablation/{COMBO}/summary/shard-{{shard}}.parquet"
ABLATION_FAILED = f"{RUN}/ablation/{COMBO}/failed/shard-{{shard}}.parquet"
FAILED_CLIPS = f"{RUN}/tables/failed_clips.parquet"
PROBLEMS_PAGE = f"{RUN}/figures/problems.html"
CLIP_UNITS = f"{RUN}/tables/{COMBO}/clip_unit_summary.parquet"
CONDITIONS = f"{RUN}/tables/{COMBO}/condition_summary.parquet"
LAYER_SPECIALISATION = f"{RUN}/tables/layer_specialisation.parquet"
FIG_HEATMAP = f"{RUN}/figures/selectivity_heatmap.png"
FIG_DISTRIBUTIONS = f"{RUN}/figures/unit_distributions.png"
QUESTION_TABLES = ["emotion_encoding", "temporal_profiles", "voicing", "gender_contrasts",
                   "intensity_effects"]
QUESTION = f"{RUN}/tables/{COMBO}/{{question}}.parquet"
FIG_TEMPORAL = f"{RUN}/figures/{COMBO}/temporal_profiles.png"
FIG_GENDER = f"{RUN}/figures/{COMBO}/gender_contrasts.png"
FIG_INTENSITY = f"{RUN}/figures/{COMBO}/intensity_effects.png"
LISTENING = f"{RUN}/figures/{COMBO}/listening.html"
FIG_CLIP = f"{RUN}/figures/{COMBO}/clip_attribution.png"
FIG_EMOTIONS = f"{RUN}/figures/{COMBO}/emotion_comparison.png"
# the one output that reads every model
FIG_MODELS = "results/figures/models_by_layer.png"

wildcard_constraints:
    model="|".join(map(re.escape, MODEL_NAMES)),
    shard=r"\d+",
    baseline=r"[A-Za-z0-9_.\-]+",
    segment_ms=r"\d+",
    reduction=r"[a-z0-9.\-]+",


def code_version(script):
    """Content hash of the package modules ``scripts/<script>.py`` imports, transitively.

    Given as a param, so that a change of that logic reruns exactly the jobs
    it affects (Snakemake itself tracks only the script file).
    """
    return code_hash(Path(workflow.basedir) / "scripts" / f"{script}.py", workflow.basedir)


def model_input(wildcards):
    """The model folder when the workflow builds it (demo), else nothing to wait for."""
    model = MODELS[wildcards.model]
    return model["name_or_path"] if model["build_tiny"] else []


def ablation_units_input(wildcards):
    """The model's selection table when ablation.units_from is selection, else nothing."""
    return SELECTED_UNITS.format(model=wildcards.model) if ABLATION["units_from"] == "selection" else []


def model_ref(wildcards, input):
    """What from_pretrained loads: the built folder (an input) or the hub name."""
    model = MODELS[wildcards.model]
    return input.model if model["build_tiny"] else model["name_or_path"]


def model_revision(wildcards):
    return MODELS[wildcards.model]["revision"]


def combos(pattern, **more):
    """``pattern`` expanded over every ablation parameter combination (and ``more``); other
    wildcards, such as {model}, stay."""
    return expand(
        pattern,
        baseline=ABLATION["baselines"],
        segment_ms=ABLATION["segment_ms"],
        reduction=ABLATION["reductions"],
        **more,
        allow_missing=True,
    )


def per_model(patterns):
    """``patterns`` expanded over every model of the study."""
    return expand(patterns, model=MODEL_NAMES)


def noted_tables():
    """name -> path of every table whose notes or emptiness the problems page reports."""
    tables = {"selectivity": SELECTIVITY, "selected_units": SELECTED_UNITS,
              "layer_specialisation": LAYER_SPECIALISATION}
    for question in QUESTION_TABLES:
        for path in combos(QUESTION.replace("{question}", question)):
            tables[path.removeprefix(f"{RUN}/tables/").removesuffix(".parquet")] = path
    return tables


def all_outputs():
    return [
        INDEX_CLIPS,
        INDEX_REJECTED,
        *per_model([
            *expand(ACTIVATIONS, shard=SHARDS, allow_missing=True),
            SELECTIVITY,
            REPLICATION,
            SELECTED_UNITS,
            *combos(CLIP_UNITS),
            *combos(CONDITIONS),
            *combos(FIG_CLIP),
            *combos(FIG_EMOTIONS),
            LAYER_SPECIALISATION,
            FIG_HEATMAP,
            FIG_DISTRIBUTIONS,
            *[path for q in QUESTION_TABLES for path in combos(QUESTION.replace("{question}", q))],
            *combos(FIG_TEMPORAL),
            *combos(FIG_GENDER),
            *combos(FIG_INTENSITY),
            *combos(LISTENING),
            FAILED_CLIPS,
            PROBLEMS_PAGE,
        ]),
        FIG_MODELS,
    ]


def pdf(png):
    """The PDF written beside a PNG figure."""
    return png[: -len(".png")] + ".pdf"


def combo_label():
    """A report subcategory naming the model and combination (Snakemake fills in the wildcards)."""
    return "{model}: baseline {baseline}, {segment_ms} ms, {reduction}"


def model_label():
    """A report subcategory naming the model."""
    return "{model}"

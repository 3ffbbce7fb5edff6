# Config validation, path patterns and input functions. Describes the DAG only:
# nothing here imports torch (speechneurons.config and .codehash are plain Python).
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
MODEL = config["model"]
COMPUTE = config["compute"]
ABLATION = config["ablation"]
FIGURES = config["figures"]
ACTIVATIONS_CFG = config["activations"]
STATS = config["stats"]
SELECTION = config["selection"]

SHARDS = list(range(COMPUTE["shards"]))
# One folder per ablation parameter combination, named by its values, so that
# adding a value to a list runs only the new combination's jobs.
COMBO = "baseline~{baseline}/segment_ms~{segment_ms}/reduction~{reduction}"

INDEX_CLIPS = "results/index/clips.parquet"
INDEX_REJECTED = "results/index/rejected.parquet"
ACTIVATIONS = "results/activations/shard-{shard}.parquet"
ACTIVATION_FRAMES = "results/activations/frames/shard-{shard}.safetensors"
ACTIVATIONS_FAILED = "results/activations/failed/shard-{shard}.parquet"
SELECTIVITY = "results/tables/selectivity.parquet"
REPLICATION = "results/tables/replication.parquet"
SELECTED_UNITS = "results/tables/selected_units.parquet"
ATTRIBUTIONS = f"results/ablation/{COMBO}/attributions/shard-{{shard}}.safetensors"
SEGMENTS = f"results/ablation/{COMBO}/segments/shard-{{shard}}.parquet"
SUMMARIES = f"results/ablation/{COMBO}/summary/shard-{{shard}}.parquet"
ABLATION_FAILED = f"results/ablation/{COMBO}/failed/shard-{{shard}}.parquet"
FAILED_CLIPS = "results/tables/failed_clips.parquet"
PROBLEMS_PAGE = "results/figures/problems.html"
CLIP_UNITS = f"results/tables/{COMBO}/clip_unit_summary.parquet"
CONDITIONS = f"results/tables/{COMBO}/condition_summary.parquet"
LAYER_SPECIALISATION = "results/tables/layer_specialisation.parquet"
FIG_HEATMAP = "results/figures/selectivity_heatmap.png"
FIG_DISTRIBUTIONS = "results/figures/unit_distributions.png"
QUESTION_TABLES = ["emotion_encoding", "temporal_profiles", "voicing", "gender_contrasts",
                   "intensity_effects"]
QUESTION = f"results/tables/{COMBO}/{{question}}.parquet"
FIG_TEMPORAL = f"results/figures/{COMBO}/temporal_profiles.png"
FIG_GENDER = f"results/figures/{COMBO}/gender_contrasts.png"
FIG_INTENSITY = f"results/figures/{COMBO}/intensity_effects.png"
LISTENING = f"results/figures/{COMBO}/listening.html"
FIG_CLIP = f"results/figures/{COMBO}/clip_attribution.png"
FIG_EMOTIONS = f"results/figures/{COMBO}/emotion_comparison.png"


wildcard_constraints:
    shard=r"\d+",
    baseline=r"[A-Za-z0-9_.\-]+",
    segment_ms=r"\d+",
    reduction=r"[a-z0-9.\-]+",


def model_input():
    """The model folder when the workflow builds it (demo), else nothing to wait for."""
    return MODEL["name_or_path"] if MODEL["build_tiny"] else []


def code_version(script):
    """Content hash of the package modules ``scripts/<script>.py`` imports, transitively.

    Given as a param, so that a change of that logic reruns exactly the jobs
    it affects (Snakemake itself tracks only the script file).
    """
    return code_hash(Path(workflow.basedir) / "scripts" / f"{script}.py", workflow.basedir)


def ablation_units_input():
    """The selection table when ablation.units_from is selection, else nothing."""
    return SELECTED_UNITS if ABLATION["units_from"] == "selection" else []


def model_ref(wildcards, input):
    """What from_pretrained loads: the built folder (an input) or the hub name."""
    return input.model if MODEL["build_tiny"] else MODEL["name_or_path"]


def combos(pattern, **more):
    """``pattern`` expanded over every ablation parameter combination of the config (and ``more``)."""
    return expand(
        pattern,
        baseline=ABLATION["baselines"],
        segment_ms=ABLATION["segment_ms"],
        reduction=ABLATION["reductions"],
        **more,
    )


def noted_tables():
    """name -> path of every table whose notes or emptiness the problems page reports."""
    tables = {"selectivity": SELECTIVITY, "selected_units": SELECTED_UNITS,
              "layer_specialisation": LAYER_SPECIALISATION}
    for question in QUESTION_TABLES:
        for path in combos(QUESTION.replace("{question}", question)):
            tables[path.removeprefix("results/tables/").removesuffix(".parquet")] = path
    return tables


def all_outputs():
    return [
        INDEX_CLIPS,
        INDEX_REJECTED,
        *expand(ACTIVATIONS, shard=SHARDS),
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
    ]


def pdf(png):
    """The PDF written beside a PNG figure."""
    return png[: -len(".png")] + ".pdf"


def combo_label():
    """A report subcategory naming the combination (Snakemake fills in the wildcards)."""
    return "baseline {baseline}, {segment_ms} ms, {reduction}"

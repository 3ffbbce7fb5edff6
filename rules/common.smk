# Config validation, path patterns and input functions. Describes the DAG only:
# nothing here imports torch (speechneurons.config, .codehash and .datasets are plain Python).
import hashlib
import re
import shlex
import sys
from pathlib import Path

import yaml
from snakemake.utils import min_version, validate

from speechneurons.codehash import code_hash, loads_corpus
from speechneurons.combination import FOLDER, combination_grid
from speechneurons.config import (
    hop_ms,
    model_config,
    unit_range_errors,
    unknown_keys,
    unsafe_strings,
    user_baseline_file,
)
from speechneurons.datasets import corpus_module_path, load_corpus
from speechneurons.datasets.index import IndexFilters
from speechneurons.datasets.state import shard_digests, shards_stand_alone
from speechneurons.integrity import damaged_outputs
from speechneurons.logs import low_disk_note
from speechneurons.problems import run_summary
from speechneurons.settings import ABLATION_UNITS
from speechneurons.tiny_shape import TINY_SHAPE

min_version("9.0")

# The seed guide's spelling: snakemake --config ravdess_path=/path/to/ravdess
if "ravdess_path" in config:
    config.setdefault("dataset", {})["root"] = config["ravdess_path"]

# a misspelled key fails here, naming it and the nearest valid key, before any job runs
_unknown = unknown_keys(
    config,
    yaml.safe_load((Path(workflow.basedir) / "schemas/config.schema.yaml").read_text()),
)
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
IndexFilters.from_config(DATASET["filters"], SPEC)
_root_errors = _corpus.check_root(DATASET["root"])
if _root_errors:
    raise ValueError("config: " + "\n".join(_root_errors))
COMPUTE = config["compute"]
ABLATION = config["ablation"]
FIGURES = config["figures"]
ACTIVATIONS_CFG = config["activations"]
STATS = config["stats"]
SELECTION = config["selection"]
PROBES_CFG = config["probes"]
KNOCKOUT_CFG = config["knockout"]
BROWSER_CFG = config["browser"]
RELIABILITY_CFG = config["reliability"]

# The study's models: `models` (a list), else `model` (one). Each writes under results/model~<name>/.
_model_list = config.get("models") or ([config["model"]] if config.get("model") else [])
if not _model_list:
    raise ValueError(
        "config: name the model (model.name_or_path) or several (models: a list)"
    )
MODELS = {}
for _i, _model in enumerate(_model_list):
    _name = _model.get("name") or Path(str(_model["name_or_path"]).rstrip("/")).name
    if _name in MODELS:
        raise ValueError(
            f"config: models[{_i}] is named {_name!r} like an earlier model; give it a "
            "distinct models[].name"
        )
    if (
        _model["build_tiny"]
        and Path(_model["name_or_path"]).parent.as_posix() != "results/models"
    ):
        raise ValueError(
            f"config: model {_name!r} has build_tiny, so its name_or_path must be "
            f"results/models/<folder>, not {_model['name_or_path']!r}"
        )
    MODELS[_name] = _model
MODEL_NAMES = list(MODELS)


def _check_models_against_config():
    """Segment lengths, layers and neurons against each model's config.json (no weights loaded; a
    tiny model the workflow builds has TINY_SHAPE) and model folders that exist: before any job, in
    the config's words."""
    errors = []
    for i, (name, model) in enumerate(MODELS.items()):
        key = (
            f"models[{i}].name_or_path"
            if config.get("models")
            else "model.name_or_path"
        )
        found = (
            TINY_SHAPE
            if model["build_tiny"]
            else model_config(str(model["name_or_path"]), key)
        )
        hop = hop_ms(found)
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

SHARDS = list(range(COMPUTE["shards"]))
# One folder per ablation parameter combination, named by its values, so that
# adding a value to a list runs only the new combination's jobs.
COMBO = FOLDER

INDEX_CLIPS = "results/index/clips.parquet"
INDEX_REJECTED = "results/index/rejected.parquet"
INDEX_SHARD_CLIPS = "results/index/shards/clips-{shard}.parquet"
INDEX_SHARD_REJECTED = "results/index/shards/rejected-{shard}.parquet"
# everything computed from a model's activations lives in its own folder
RUN = "results/model~{model}"
LOGS = "results/logs/model~{model}"
# per torch job: wall time, CPU time and peak memory (Snakemake's benchmark), to size runtime and mem_mb
BENCH = "results/benchmarks/model~{model}"
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
# questions 2-5 (speechneurons.questions.QUESTION_TABLES), named by the role of their factor
QUESTION_TABLES = [
    "target_encoding",
    "temporal_profiles",
    "voicing",
    "group_contrasts",
    "graded_effects",
]
QUESTION = f"{RUN}/tables/{COMBO}/{{question}}.parquet"
FIG_TEMPORAL = f"{RUN}/figures/{COMBO}/temporal_profiles.png"
FIG_GROUPS = f"{RUN}/figures/{COMBO}/group_contrasts.png"
FIG_GRADED = f"{RUN}/figures/{COMBO}/graded_effects.png"
LISTENING = f"{RUN}/figures/{COMBO}/listening.html"
FIG_CLIP = f"{RUN}/figures/{COMBO}/clip_attribution.png"
FIG_LEVELS = f"{RUN}/figures/{COMBO}/level_comparison.png"
# report categories in the corpus's words; a question the corpus lacks says so in its figure
Q2_CATEGORY = f"2 {SPEC.target.capitalize()} encoding"
Q4_CATEGORY = (
    f"4 {SPEC.group.capitalize()} differences" if SPEC.group else "4 Group differences"
)
Q5_CATEGORY = (
    f"5 {SPEC.graded[0].capitalize()} effects" if SPEC.graded else "5 Graded effects"
)
PROBES = f"{RUN}/tables/probes.parquet"
FIG_PROBES = f"{RUN}/figures/probes_by_layer.png"
KNOCKOUT_SHARD = f"{RUN}/knockout/shard-{{shard}}.safetensors"
KNOCKOUT = f"{RUN}/tables/knockout.parquet"
KNOCKOUT_FOLDS = f"{RUN}/tables/knockout_folds.parquet"
FIG_KNOCKOUT = f"{RUN}/figures/knockout.png"
UNIT_BROWSER = f"{RUN}/figures/{COMBO}/unit_browser.html"
# how far to trust the attributions (rules/reliability.smk)
REL = f"{RUN}/tables/reliability"
REL_AGREEMENT_UNITS = f"{REL}/agreement_units.parquet"
REL_AGREEMENT = f"{REL}/agreement.parquet"
REL_DELETION = f"{REL}/deletion.parquet"
REL_DELETION_CURVES = f"{REL}/deletion_curves.parquet"
REL_RANDOMISATION = f"{REL}/randomisation.parquet"
REL_RANDOMISATION_UNITS = f"{REL}/randomisation_units.parquet"
REL_BOOTSTRAP_UNITS = f"{REL}/bootstrap_units.parquet"
REL_BOOTSTRAP = f"{REL}/bootstrap.parquet"
FIG_RELIABILITY = f"{RUN}/figures/reliability.png"
RELIABILITY_PAGE = f"{RUN}/figures/reliability.html"
RELIABILITY_CATEGORY = "How far to trust these results"
# the one output that reads every model
FIG_MODELS = "results/figures/models_by_layer.png"
FIG_MODELS_PROBES = "results/figures/probes_by_model.png"


wildcard_constraints:
    model="|".join(map(re.escape, MODEL_NAMES)),
    shard=r"\d+",
    baseline=r"[A-Za-z0-9_.\-]+",
    segment_ms=r"\d+",
    reduction=r"[a-z0-9.\-]+",


def section(values, *keys):
    """The ``keys`` of a config section: what a rule passes a settings class
    (``speechneurons.settings.FromConfig.from_config``, which checks it gets exactly the keys it
    reads), so that the job's params change, and the job reruns, exactly when one of them does.
    """
    return {key: values[key] for key in keys}


def code_version(script):
    """Content hash of the package modules ``scripts/<script>.py`` imports, transitively.

    Given as a param, so that a change of that logic reruns exactly the jobs
    it affects (Snakemake itself tracks only the script file).
    """
    path = Path(workflow.basedir) / "scripts" / f"{script}.py"
    # a script that loads the corpus by name runs the corpus's own file too
    return code_hash(
        path,
        workflow.basedir,
        loaded=[corpus_module_path(CORPUS["name"])] if loads_corpus(path) else [],
    )


# What each shard's part of the index reads of the data (speechneurons.datasets.state): an added,
# removed or replaced file reruns its shard's index_shard job (param `data`), that shard's jobs (they
# read that part) and the jobs that read the gathered index.
_manifest_file = Path(str(CORPUS["manifest"].get("file") or ""))
SHARD_DATA = shard_digests(
    DATASET["root"],
    {
        "corpus": CORPUS,
        "filters": DATASET["filters"],
        "min_duration_s": DATASET["min_duration_s"],
        "max_duration_s": DATASET["max_duration_s"],
        "code": code_version("index_shard"),
    },
    COMPUTE["shards"],
    extra_files=(_manifest_file,) if _manifest_file.is_absolute() else (),
)
SHARDS_STAND_ALONE = shards_stand_alone(DATASET["filters"], CORPUS["manifest"])


def shard_data(wildcards):
    """The digest of what this shard's part of the index depends on (a param: it changes when they do)."""
    return SHARD_DATA[int(wildcards.shard)]


def shard_index(wildcards):
    """The clips a shard's jobs read: the shard's part of the index, or the gathered index when a
    cell cap or manifest clip ids tie the shards together."""
    return (
        INDEX_SHARD_CLIPS.format(shard=wildcards.shard)
        if SHARDS_STAND_ALONE
        else INDEX_CLIPS
    )


def baseline_code(wildcards):
    """The content hash of a user baseline's module (empty for a built-in baseline)."""
    path = BASELINE_FILES.get(wildcards.baseline)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path else ""


def model_input(wildcards):
    """The model folder when the workflow builds it (demo), else nothing to wait for."""
    model = MODELS[wildcards.model]
    return model["name_or_path"] if model["build_tiny"] else []


def ablation_units_input(wildcards):
    """The model's selection table when ablation.units_from is selection, else nothing."""
    return (
        SELECTED_UNITS.format(model=wildcards.model)
        if ABLATION["units_from"] == "selection"
        else []
    )


def model_ref(wildcards, input):
    """What from_pretrained loads: the built folder (an input) or the hub name."""
    model = MODELS[wildcards.model]
    return input.model if model["build_tiny"] else model["name_or_path"]


def browser_tables(wildcards):
    """The probe and knock-out tables the unit browser shows, where the config asks for them."""
    tables = {"probes": PROBES} if PROBES_CFG["enabled"] else {}
    tables.update({"knockout": KNOCKOUT} if KNOCKOUT_CFG["enabled"] else {})
    return {name: path.format(model=wildcards.model) for name, path in tables.items()}


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


def combination_settings():
    """Every ablation parameter combination as a dict, the first of each list first."""
    return [c.columns() for c in combination_grid(ABLATION)]


def combination_files(wildcards):
    """Every combination's settings with its attribution and segment shards (this model's)."""
    return [
        {
            **c,
            "attributions": expand(
                ATTRIBUTIONS, shard=SHARDS, model=wildcards.model, **c
            ),
            "segments": expand(SEGMENTS, shard=SHARDS, model=wildcards.model, **c),
        }
        for c in combination_settings()
    ]


def first_combination_segments(wildcards):
    """The segment index of the first combination: the clips the ablation could read."""
    return expand(
        SEGMENTS, shard=SHARDS, model=wildcards.model, **combination_settings()[0]
    )


def per_model(patterns):
    """``patterns`` expanded over every model of the study."""
    return expand(patterns, model=MODEL_NAMES)


def noted_tables():
    """name -> path of every table whose notes or emptiness the problems page reports."""
    tables = {
        "selectivity": SELECTIVITY,
        "selected_units": SELECTED_UNITS,
        "layer_specialisation": LAYER_SPECIALISATION,
    }
    tables.update({"probes": PROBES} if PROBES_CFG["enabled"] else {})
    tables.update({"knockout": KNOCKOUT} if KNOCKOUT_CFG["enabled"] else {})
    for question in QUESTION_TABLES:
        for path in combos(QUESTION.replace("{question}", question)):
            tables[path.removeprefix(f"{RUN}/tables/").removesuffix(".parquet")] = path
    return tables


def all_outputs():
    """Every file a job of the study writes, shards and intermediate tables included.

    A file that only its consumers ask for is lost for good when a killed
    rerun deletes it while the consumers' old outputs stand (Snakemake then
    sees nothing to do); as a target of rule all it is redone by the next
    run. tests/test_workflow.py checks that every job of the DAG feeds rule all.
    """
    return [
        *expand(INDEX_SHARD_CLIPS, shard=SHARDS),
        *expand(INDEX_SHARD_REJECTED, shard=SHARDS),
        INDEX_CLIPS,
        INDEX_REJECTED,
        *[m["name_or_path"] for m in TINY.values()],
        *per_model(
            [
                *expand(ACTIVATIONS, shard=SHARDS, allow_missing=True),
                *expand(ACTIVATIONS_FAILED, shard=SHARDS, allow_missing=True),
                *(
                    expand(ACTIVATION_FRAMES, shard=SHARDS, allow_missing=True)
                    if ACTIVATIONS_CFG["frames"]
                    else []
                ),
                *[
                    path
                    for pattern in (ATTRIBUTIONS, SEGMENTS, SUMMARIES, ABLATION_FAILED)
                    for path in combos(pattern, shard=SHARDS)
                ],
                SELECTIVITY,
                REPLICATION,
                SELECTED_UNITS,
                *combos(CLIP_UNITS),
                *combos(CONDITIONS),
                *combos(FIG_CLIP),
                *combos(FIG_LEVELS),
                LAYER_SPECIALISATION,
                FIG_HEATMAP,
                FIG_DISTRIBUTIONS,
                *[
                    path
                    for q in QUESTION_TABLES
                    for path in combos(QUESTION.replace("{question}", q))
                ],
                *combos(FIG_TEMPORAL),
                *combos(FIG_GROUPS),
                *combos(FIG_GRADED),
                *combos(LISTENING),
                FAILED_CLIPS,
                PROBLEMS_PAGE,
                *([PROBES, FIG_PROBES] if PROBES_CFG["enabled"] else []),
                *(
                    [
                        KNOCKOUT,
                        KNOCKOUT_FOLDS,
                        FIG_KNOCKOUT,
                        *expand(KNOCKOUT_SHARD, shard=SHARDS, allow_missing=True),
                    ]
                    if KNOCKOUT_CFG["enabled"]
                    else []
                ),
                *(combos(UNIT_BROWSER) if BROWSER_CFG["enabled"] else []),
                *(
                    [
                        FIG_RELIABILITY,
                        RELIABILITY_PAGE,
                        REL_AGREEMENT_UNITS,
                        REL_AGREEMENT,
                        REL_DELETION,
                        REL_DELETION_CURVES,
                        REL_RANDOMISATION,
                        REL_RANDOMISATION_UNITS,
                        REL_BOOTSTRAP_UNITS,
                        REL_BOOTSTRAP,
                    ]
                    if RELIABILITY_CFG["enabled"]
                    else []
                ),
            ]
        ),
        FIG_MODELS,
        FIG_MODELS_PROBES,
    ]


# A table or array of the study cut short (full disk, a stopped copy) stops the run here, before the
# jobs that read it start and Snakemake deletes their good outputs (speechneurons.integrity).
_damaged = damaged_outputs(
    all_outputs(), command=shlex.join(["snakemake", *sys.argv[1:]])
)
if _damaged:
    raise ValueError("\n".join(_damaged))


def pdf(png):
    """The PDF written beside a PNG figure."""
    return png[: -len(".png")] + ".pdf"


def combo_label():
    """A report subcategory naming the model and combination (Snakemake fills in the wildcards)."""
    return "{model}: baseline {baseline}, {segment_ms} ms, {reduction}"


def model_label():
    """A report subcategory naming the model."""
    return "{model}"

# Input functions, code hashes, what each shard reads of the data, and every output of the
# study, the targets of the default rule. Nothing here imports torch.
import hashlib
import shlex
import sys

from speechneurons.codehash import code_hash, loads_corpus
from speechneurons.combination import combination_grid
from speechneurons.datasets import corpus_module_path
from speechneurons.datasets.state import shard_digests, shards_stand_alone
from speechneurons.integrity import damaged_outputs
from speechneurons.logs import low_disk_note
from speechneurons.problems import run_summary
from speechneurons.settings import ABLATION_UNITS


def section(values, *keys):
    """The ``keys`` of a config section: what a rule passes a settings class
    (``speechneurons.settings.FromConfig.from_config``, which checks it gets exactly the keys it
    reads), so that the job's params change, and the job reruns, exactly when one of them does.
    """
    return {key: values[key] for key in keys}


# what a model job needs to read the sae site (None without SAEs: sae keys then rerun nothing)
SAE_SITE = section(SAE_CFG, "site", "layers") if SAE_CFG["enabled"] else None
# the sites a knock-out sets: latents too where the SAEs are of hidden layers
KNOCKOUT_SITES = ["hidden"] + (
    ["sae"] if SAE_CFG["enabled"] and SAE_CFG["site"] == "hidden" else []
)
# what a job that reads the activation cache reads: the activation pass's shards, then (with SAEs)
# the latents' shards (speechneurons.cache.ActivationCache joins each clip's two parts)
CACHE_TABLES = [
    *expand(ACTIVATIONS, shard=SHARDS, allow_missing=True),
    *(
        expand(SAE_ACTIVATIONS, shard=SHARDS, allow_missing=True)
        if SAE_CFG["enabled"]
        else []
    ),
]
# the SAE file of each of sae.layers, in that order: an input of every job that reads the sae site
SAE_FILES = (
    expand(SAE_FILE, sae_layer=SAE_CFG["layers"], allow_missing=True)
    if SAE_CFG["enabled"]
    else []
)


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
# read that part) and the jobs that read the gathered index. Files count by their bytes (a touch
# reruns nothing), hashed once and kept by size and time in CONTENT_DIGESTS.
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
    cache=CONTENT_DIGESTS,
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
    for path in [*combos(PROSODY_UNITS), *combos(PROSODY_LAYERS)]:
        tables[path.removeprefix(f"{RUN}/tables/").removesuffix(".parquet")] = path
    tables.update(
        {"sae_quality": SAE_QUALITY, "neurons_vs_features": NEURONS_VS_FEATURES}
        if SAE_CFG["enabled"]
        else {}
    )
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
        *expand(PROSODY_TRACKS, shard=SHARDS),
        *expand(PROSODY_FAILED, shard=SHARDS),
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
                *combos(PROSODY_UNITS),
                *combos(PROSODY_LAYERS),
                *combos(FIG_PROSODY),
                *combos(PROSODY_PAGE),
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
                        *expand(SAE_FRAMES, shard=SHARDS, allow_missing=True),
                        *expand(SAE_ACTIVATIONS, shard=SHARDS, allow_missing=True),
                        *expand(SAE_FRAMES_FAILED, shard=SHARDS, allow_missing=True),
                        *expand(
                            SAE_FILE, sae_layer=SAE_CFG["layers"], allow_missing=True
                        ),
                        *expand(
                            SAE_LAYER_QUALITY,
                            sae_layer=SAE_CFG["layers"],
                            allow_missing=True,
                        ),
                        SAE_QUALITY,
                        FIG_SAE_QUALITY,
                        SAE_PAGE,
                        NEURONS_VS_FEATURES,
                        FIG_NEURONS_VS_FEATURES,
                    ]
                    if SAE_CFG["enabled"]
                    else []
                ),
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

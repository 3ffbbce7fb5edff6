# Where every output lives: path patterns with their wildcards, and the report's categories.
# questions 2-5 write one table each (speechneurons.study.QUESTION_TABLES).
import re

from speechneurons.combination import FOLDER
from speechneurons.study import QUESTION_TABLES, question_categories

SHARDS = list(range(COMPUTE["shards"]))
# One folder per ablation parameter combination, named by its values, so that
# adding a value to a list runs only the new combination's jobs.
COMBO = FOLDER

# the SHA-256 of each corpus file by (path, size, time, inode): what a plan reads instead of the bytes
CONTENT_DIGESTS = "results/.content-digests.json"
INDEX_CLIPS = "results/index/clips.parquet"
INDEX_REJECTED = "results/index/rejected.parquet"
INDEX_SHARD_CLIPS = "results/index/shards/clips-{shard}.parquet"
INDEX_SHARD_REJECTED = "results/index/shards/rejected-{shard}.parquet"
# Praat's prosody track per clip: from the audio only, shared by every model
PROSODY_TRACKS = "results/prosody/shard-{shard}.parquet"
PROSODY_FAILED = "results/prosody/failed/shard-{shard}.parquet"
# everything computed from a model's activations lives in its own folder
RUN = "results/model~{model}"
LOGS = "results/logs/model~{model}"
# per torch job: wall time, CPU time and peak memory (Snakemake's benchmark), to size runtime and mem_mb
BENCH = "results/benchmarks/model~{model}"
ACTIVATIONS = f"{RUN}/activations/shard-{{shard}}.parquet"
ACTIVATION_FRAMES = f"{RUN}/activations/frames/shard-{{shard}}.safetensors"
ACTIVATIONS_FAILED = f"{RUN}/activations/failed/shard-{{shard}}.parquet"
# the SAE latents of the cache, pooled from the SAE's frames in shards of their own (sae.enabled)
SAE_ACTIVATIONS = f"{RUN}/activations/sae/shard-{{shard}}.parquet"
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
QUESTION = f"{RUN}/tables/{COMBO}/{{question}}.parquet"
FIG_TEMPORAL = f"{RUN}/figures/{COMBO}/temporal_profiles.png"
# question 3 with prosody: which acoustic measures each unit's attribution follows
PROSODY_UNITS = f"{RUN}/tables/{COMBO}/prosody_units.parquet"
PROSODY_LAYERS = f"{RUN}/tables/{COMBO}/prosody_layers.parquet"
FIG_PROSODY = f"{RUN}/figures/{COMBO}/prosody.png"
PROSODY_PAGE = f"{RUN}/figures/{COMBO}/prosody.html"
FIG_GROUPS = f"{RUN}/figures/{COMBO}/group_contrasts.png"
FIG_GRADED = f"{RUN}/figures/{COMBO}/graded_effects.png"
LISTENING = f"{RUN}/figures/{COMBO}/listening.html"
FIG_CLIP = f"{RUN}/figures/{COMBO}/clip_attribution.png"
FIG_LEVELS = f"{RUN}/figures/{COMBO}/level_comparison.png"
# report categories in the corpus's words; a question the corpus lacks says so in its figure
CATEGORY = question_categories(
    SPEC.target, SPEC.group, SPEC.graded[0] if SPEC.graded else None
)
# sparse-autoencoder features (sae.enabled)
SAE_FRAMES = f"{RUN}/sae/frames/shard-{{shard}}.safetensors"
SAE_FRAMES_FAILED = f"{RUN}/sae/frames/failed-{{shard}}.parquet"
SAE_FILE = f"{RUN}/sae/layer-{{sae_layer}}.safetensors"
SAE_LAYER_QUALITY = f"{RUN}/sae/layer-{{sae_layer}}-quality.parquet"
SAE_QUALITY = f"{RUN}/tables/sae_quality.parquet"
FIG_SAE_QUALITY = f"{RUN}/figures/sae_quality.png"
SAE_PAGE = f"{RUN}/figures/sae.html"
NEURONS_VS_FEATURES = f"{RUN}/tables/neurons_vs_features.parquet"
FIG_NEURONS_VS_FEATURES = f"{RUN}/figures/neurons_vs_features.png"
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
    sae_layer=r"\d+",
    baseline=r"[A-Za-z0-9_.\-]+",
    segment_ms=r"\d+",
    reduction=r"[a-z0-9.\-]+",

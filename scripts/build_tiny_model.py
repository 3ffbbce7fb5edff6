"""Snakemake adapter: build the demo's tiny random model (rule tiny_model)."""

from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.models.tiny import build_tiny_model

log_to_file(snakemake.log[0])  # noqa: F821
pin_threads(snakemake.threads)  # noqa: F821
build_tiny_model(snakemake.output[0], snakemake.params.family, snakemake.params.seed)  # noqa: F821

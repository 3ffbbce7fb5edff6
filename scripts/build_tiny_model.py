"""Snakemake adapter: build the demo's tiny random WavLM (rule tiny_model)."""

from speechneurons.logs import log_to_file
from speechneurons.models import build_tiny_wavlm

log_to_file(snakemake.log[0])  # noqa: F821
build_tiny_wavlm(snakemake.output[0], seed=snakemake.params.seed)  # noqa: F821

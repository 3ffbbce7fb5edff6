"""Snakemake adapter: question 1, layer specialisation (rule layer_specialisation)."""

from speechneurons import provenance
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.questions import layer_specialisation
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
record = provenance.build(sm.rule, sm.params, provenance.upstream_model(sm.input),
                          wildcards=sm.wildcards)
provenance.write_table(layer_specialisation(read_parquet(sm.input[0])), sm.output[0], record)

"""Snakemake adapter: layer specialisation and probes of every model of the study (rule models_by_layer)."""

from speechneurons import provenance
from speechneurons.figures import not_drawn, plot_cross_model, plot_probes_by_model, save_figure
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.questions import models_by_layer
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
record = provenance.build(sm.rule, sm.params, wildcards=sm.wildcards)
metadata = provenance.png_metadata(record)
tables = {name: read_parquet(path) for name, path in zip(sm.params.models, sm.input.layers)}
save_figure(plot_cross_model(models_by_layer(tables)), sm.output.figure, metadata)
if sm.input.probes:
    probes = {name: read_parquet(path) for name, path in zip(sm.params.models, sm.input.probes)}
    save_figure(plot_probes_by_model(models_by_layer(probes)), sm.output.probes, metadata)
else:
    save_figure(not_drawn("probes across models", "probes.enabled is false in the config"),
                sm.output.probes, metadata)

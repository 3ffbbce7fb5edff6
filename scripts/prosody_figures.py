"""Snakemake adapter: question 3's prosody figure and its page of findings (rule prosody_figures)."""

from pathlib import Path

from speechneurons import provenance
from speechneurons.datasets import corpus_spec
from speechneurons.figures import save_figure
from speechneurons.logs import log_to_file
from speechneurons.prosody_report import findings, plot_prosody, prosody_page
from speechneurons.threads import pin_threads
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)

target = corpus_spec(sm.params.corpus).target
layers, units = read_parquet(sm.input.layers), read_parquet(sm.input.units)
record = provenance.build(sm.rule, sm.params, provenance.upstream_model([sm.input.layers]), wildcards=sm.wildcards)
save_figure(plot_prosody(layers, target, sm.params.fdr_alpha), sm.output.figure, provenance.png_metadata(record))
notes = provenance.notes_of(sm.input.layers) + provenance.notes_of(sm.input.units)
Path(sm.output.page).write_text(prosody_page(
    f"What in the sound drives the units ({sm.wildcards.model})",
    findings(layers, units, target, sm.params.fdr_alpha), notes))

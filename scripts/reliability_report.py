"""Snakemake adapter: the report section "How far to trust these results" (rule reliability_report)."""

from pathlib import Path

from speechneurons import provenance
from speechneurons.datasets import corpus_spec
from speechneurons.figures import save_figure
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.reliability.report import findings, plot_reliability, reliability_page
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
p = sm.params
spec = corpus_spec(p.corpus)
t = {name: read_parquet(path) for name, path in sm.input.items()}
# wall times of the model checks, kept in their provenance so that the tables are reproducible
seconds = {what: provenance.read_provenance(path)["seconds"]
           for what, path in (("deletion curves", sm.input.deletion),
                              ("model randomisation", sm.input.randomisation))}
notes = [n for path in sm.input for n in provenance.notes_of(path)]
record = provenance.build(sm.rule, p, provenance.upstream_model([sm.input.deletion]),
                          wildcards=sm.wildcards, notes=notes)
metadata = provenance.png_metadata(record)
save_figure(plot_reliability(t["agreement"], t["curves"], t["randomisation"], t["bootstrap"], spec.target),
            sm.output.figure, metadata)
items = findings(t["agreement"], t["deletion"], t["randomisation_units"], t["bootstrap_units"],
                 t["bootstrap"], seconds)
Path(sm.output.page).write_text(reliability_page(
    f"How far to trust these results: model {sm.wildcards.model}", items, sorted(set(notes))))

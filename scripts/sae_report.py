"""Snakemake adapter: the SAE quality table, its figure and its page of sentences (rule sae_report)."""

from pathlib import Path

import pandas as pd

from speechneurons import provenance
from speechneurons.figures import save_figure
from speechneurons.logs import log_to_file
from speechneurons.sae_report import plot_sae_quality, sae_findings, sae_page
from speechneurons.threads import pin_threads
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)

table = pd.concat([read_parquet(p) for p in sm.input.quality], ignore_index=True)
notes = [note for path in sm.input.quality for note in provenance.notes_of(path)]  # layers not trained
record = provenance.build(sm.rule, sm.params, provenance.upstream_model(sm.input.quality), wildcards=sm.wildcards,
                          notes=notes)
provenance.write_table(table, sm.output.table, record)
save_figure(plot_sae_quality(table), sm.output.figure, provenance.png_metadata(record))
Path(sm.output.page).write_text(sae_page(f"How far to trust the SAE features ({sm.wildcards.model})",
                                         sae_findings(table), notes))

"""Snakemake adapter: which acoustic measures each tested unit's attribution follows, per unit and
per layer (rule unit_prosody)."""

from speechneurons import provenance
from speechneurons.ablation.store import iter_curves
from speechneurons.datasets import corpus_spec
from speechneurons.logs import log_to_file
from speechneurons.prosody import ProsodyTracks
from speechneurons.questions import tested_pairs
from speechneurons.schemas import current_names
from speechneurons.threads import pin_threads
from speechneurons.unit_prosody import unit_prosody
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)

clip_units = current_names(read_parquet(sm.input.clip_units))
selected = read_parquet(sm.input.selected)
tables = unit_prosody(iter_curves(sm.input.attributions, sm.input.segments), ProsodyTracks.read(sm.input.prosody),
                      tested_pairs(clip_units, selected), selected, corpus_spec(sm.params.corpus),
                      sm.params.fdr_alpha)
record = provenance.build(sm.rule, sm.params, provenance.upstream_model([sm.input.clip_units]),
                          wildcards=sm.wildcards)
for name, table in tables.items():
    provenance.write_table(table, sm.output[name], record)

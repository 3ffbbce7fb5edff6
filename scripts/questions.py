"""Snakemake adapter: the tables of questions 2-5 for one parameter combination (rule questions)."""

from speechneurons import provenance
from speechneurons.ablation.store import iter_curves
from speechneurons.cache import units_matrix
from speechneurons.datasets import corpus_spec
from speechneurons.logs import log_to_file
from speechneurons.prosody import ProsodyTracks
from speechneurons.threads import pin_threads
from speechneurons.questions import answer_questions
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)

clip_units = read_parquet(sm.input.clip_units)
units = clip_units[["site", "layer", "neuron"]].drop_duplicates()
matrix = units_matrix(sm.input.activations, sm.params.statistic, units)
spec = corpus_spec(sm.params.corpus)
tables, notes, unanswered = answer_questions(
    clips=read_parquet(sm.input.clips),
    selected=read_parquet(sm.input.selected),
    clip_units=clip_units,
    curves=iter_curves(sm.input.attributions, sm.input.segments),
    activations=matrix.long(units),
    spec=spec,
    prosody=ProsodyTracks.read(sm.input.prosody),
)
upstream = provenance.upstream_model([sm.input.clip_units])
for name, table in tables.items():
    record = provenance.build(sm.rule, sm.params, upstream, wildcards=sm.wildcards, notes=notes[name])
    if name in unanswered:  # the figure says why in place of the contrast
        record["unanswered"] = unanswered[name]
    provenance.write_table(table, sm.output[name], record)

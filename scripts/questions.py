"""Snakemake adapter: the tables of questions 2-5 for one parameter combination (rule questions)."""

import pandas as pd

from speechneurons import provenance
from speechneurons.ablation.store import iter_curves
from speechneurons.activations import activation_matrix
from speechneurons.logs import log_to_file
from speechneurons.questions import answer_questions

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])

clip_units = pd.read_parquet(sm.input.clip_units)
units = clip_units[["site", "layer", "neuron"]].drop_duplicates()
matrix = activation_matrix(sm.input.activations, sm.params.statistic, sites=units["site"].unique())
columns = matrix.units.reset_index().merge(units, on=["site", "layer", "neuron"])
activations = pd.DataFrame({
    "clip_id": pd.Series(matrix.clip_ids).repeat(len(columns)).to_numpy(),
    "site": pd.concat([columns["site"]] * len(matrix.clip_ids), ignore_index=True),
    "layer": pd.concat([columns["layer"]] * len(matrix.clip_ids), ignore_index=True),
    "neuron": pd.concat([columns["neuron"]] * len(matrix.clip_ids), ignore_index=True),
    "value": matrix.values[:, columns["index"].to_numpy()].reshape(-1),
})
tables = answer_questions(
    clips=pd.read_parquet(sm.input.clips),
    selectivity=pd.read_parquet(sm.input.selectivity),
    selected=pd.read_parquet(sm.input.selected),
    clip_units=clip_units,
    curves=iter_curves(sm.input.attributions, sm.input.segments),
    activations=activations,
)
record = provenance.build(sm.rule, sm.params, provenance.upstream_model([sm.input.clip_units]),
                          wildcards=sm.wildcards)
for name, table in tables.items():
    provenance.write_table(table, sm.output[name], record)

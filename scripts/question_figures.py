"""Snakemake adapter: temporal profiles, gender and intensity contrasts (rule question_figures)."""

import json

import pandas as pd

from speechneurons import provenance
from speechneurons.figures import plot_contrast, plot_temporal_profiles, save_figure
from speechneurons.logs import log_to_file

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
alpha = sm.params.fdr_alpha
record = provenance.build(sm.rule, sm.params, provenance.upstream_model([sm.input.gender]),
                          wildcards=sm.wildcards)
metadata = {"Software": "speechneurons", "Description": json.dumps(record, sort_keys=True)}

save_figure(plot_temporal_profiles(pd.read_parquet(sm.input.temporal)), sm.output.temporal, metadata)

gender = pd.read_parquet(sm.input.gender)
figure = plot_contrast(gender, "activation_d", "attribution_d",
                       (gender["attribution_q"] < alpha) | (gender["activation_q"] < alpha),
                       "female - male, per ablated unit (actors as replicates)",
                       "activation: Cohen's d (female - male)", "attribution: Cohen's d over actors")
save_figure(figure, sm.output.gender, metadata)

intensity = pd.read_parquet(sm.input.intensity)
wide = intensity.pivot_table(index=["site", "layer", "neuron"], columns="measure",
                             values=["dz", "q"]).reset_index()
wide.columns = ["_".join(c for c in col if c) for col in wide.columns]
for column in ["dz_activation", "dz_attribution", "q_activation", "q_attribution"]:
    if column not in wide:
        wide[column] = float("nan")
figure = plot_contrast(wide, "dz_activation", "dz_attribution",
                       (wide["q_attribution"] < alpha) | (wide["q_activation"] < alpha),
                       "strong - normal, paired within actor, statement and emotion",
                       "activation: d_z over actors", "attribution: d_z over actors")
save_figure(figure, sm.output.intensity, metadata)

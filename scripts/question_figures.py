"""Snakemake adapter: temporal profiles, group and graded contrasts (rule question_figures)."""

import pandas as pd

from speechneurons import provenance
from speechneurons.datasets import corpus_spec
from speechneurons.figures import not_drawn, plot_contrast, plot_temporal_profiles, save_figure
from speechneurons.logs import log_to_file

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
alpha = sm.params.fdr_alpha
spec = corpus_spec(sm.params.corpus)
record = provenance.build(sm.rule, sm.params, provenance.upstream_model([sm.input.temporal]),
                          wildcards=sm.wildcards)
metadata = provenance.png_metadata(record)

save_figure(plot_temporal_profiles(pd.read_parquet(sm.input.temporal), spec), sm.output.temporal, metadata)
# the questions the corpus or the clips cannot answer say so in place of their figure
unanswered = {q: provenance.read_provenance(path).get("unanswered")
              for q, path in ((4, sm.input.groups), (5, sm.input.graded))}

groups = pd.read_parquet(sm.input.groups)
if unanswered[4]:
    figure = not_drawn("question 4, group differences", unanswered[4])
else:
    contrast = groups["contrast"].iloc[0] if len(groups) else "group contrast"
    figure = plot_contrast(groups, "activation_d", "attribution_d",
                           (groups["attribution_q"] < alpha) | (groups["activation_q"] < alpha),
                           f"{spec.group}: {contrast}, per tested unit (held-out speakers as replicates)",
                           "activation: Cohen's d over speakers", "attribution: Cohen's d over speakers")
save_figure(figure, sm.output.groups, metadata)

graded = pd.read_parquet(sm.input.graded)
if unanswered[5]:
    figure = not_drawn("question 5, graded effects", unanswered[5])
else:
    wide = graded.pivot_table(index=["fold", "site", "layer", "neuron"], columns="measure",
                              values=["dz", "q"]).reset_index()
    wide.columns = ["_".join(c for c in col if c) for col in wide.columns]
    for column in ["dz_activation", "dz_attribution", "q_activation", "q_attribution"]:
        if column not in wide:
            wide[column] = float("nan")
    factor, low, high = spec.graded
    pairing = ", ".join(["speaker", *[f for f in spec.within() if f != factor]])
    figure = plot_contrast(wide, "dz_activation", "dz_attribution",
                           (wide["q_attribution"] < alpha) | (wide["q_activation"] < alpha),
                           f"{factor}: {high} - {low}, paired within {pairing}",
                           "activation: d_z over speakers", "attribution: d_z over speakers")
save_figure(figure, sm.output.graded, metadata)

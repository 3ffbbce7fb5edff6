"""Snakemake adapter: temporal profiles, group and graded contrasts (rule question_figures)."""

from speechneurons import provenance
from speechneurons.datasets import corpus_spec
from speechneurons.figures import plot_graded_effects, plot_group_contrasts, plot_temporal_profiles, save_figure
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
alpha = sm.params.fdr_alpha
spec = corpus_spec(sm.params.corpus)
record = provenance.build(sm.rule, sm.params, provenance.upstream_model([sm.input.temporal]),
                          wildcards=sm.wildcards)
metadata = provenance.png_metadata(record)
# a question the corpus or the clips cannot answer says why (the table's provenance) in its figure
unanswered = {name: provenance.read_provenance(getattr(sm.input, name)).get("unanswered")
              for name in ("groups", "graded")}
save_figure(plot_temporal_profiles(read_parquet(sm.input.temporal), spec), sm.output.temporal, metadata)
save_figure(plot_group_contrasts(read_parquet(sm.input.groups), spec, alpha, unanswered["groups"]),
            sm.output.groups, metadata)
save_figure(plot_graded_effects(read_parquet(sm.input.graded), spec, alpha, unanswered["graded"]),
            sm.output.graded, metadata)

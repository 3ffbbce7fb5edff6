"""Snakemake adapter: what knocking out the selected units costs the probes (rule knockout)."""

from speechneurons import provenance
from speechneurons.cache import activation_matrix
from speechneurons.datasets import corpus_spec
from speechneurons.figures import plot_knockout, save_figure
from speechneurons.knockout.effects import knockout_effects
from speechneurons.knockout.sets import KnockoutSettings, knockout_sets
from speechneurons.knockout.store import read_knocked
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.probes import ProbeSettings
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.params.threads)  # compute.threads, whatever --cores
p = sm.params
spec = corpus_spec(p.corpus)
matrix = activation_matrix(sm.input.activations, "mean", sites=p.knockout_sites)  # hidden units, SAE latents
sets = knockout_sets(read_parquet(sm.input.selected), matrix, spec, KnockoutSettings.from_config(p.knockout),
                     tuple(p.knockout_sites))
knocked = read_knocked(sm.input.shards, sets["set_id"], matrix.clip_ids)
# the probes are refitted without permutations on the selection's folds (probes.folds is not used)
settings = ProbeSettings.from_config(p.probes, permutations=0, folds=ProbeSettings.folds)
per_fold, summary = knockout_effects(matrix, knocked, sets, read_parquet(sm.input.clips), spec, settings)
notes = [] if len(sets) else ["knock-out: no hidden-layer cross_fit unit was selected, nothing knocked out"]
record = provenance.build(sm.rule, p, provenance.upstream_model(sm.input.activations),
                          wildcards=sm.wildcards, notes=notes)
provenance.write_table(summary, sm.output.table, record)
provenance.write_table(per_fold, sm.output.folds, record)
save_figure(plot_knockout(summary, spec), sm.output.figure, provenance.png_metadata(record))

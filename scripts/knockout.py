"""Snakemake adapter: what knocking out the selected units costs the probes (rule knockout)."""

import json

import numpy as np
import pandas as pd
from safetensors import safe_open

from speechneurons import provenance
from speechneurons.cache import activation_matrix
from speechneurons.datasets import load_corpus
from speechneurons.figures import plot_knockout, save_figure
from speechneurons.knockout.effects import knockout_effects
from speechneurons.knockout.sets import KnockoutSettings, knockout_sets
from speechneurons.logs import log_to_file
from speechneurons.probes import ProbeSettings

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
p = sm.params
spec = load_corpus(p.corpus["name"], p.corpus["manifest"]).spec
matrix = activation_matrix(sm.input.activations, "mean", sites=["hidden"])
sets = knockout_sets(pd.read_parquet(sm.input.selected), matrix,
                     spec, KnockoutSettings(value=p.value, random_sets=p.random_sets,
                                            nearest=p.nearest, seed=p.seed,
                                            layers=None if p.layers == "all" else tuple(p.layers)))
# each set's rows from every shard, put back in the activation matrix's clip order
parts: dict[str, list] = {s: [] for s in sets["set_id"]}
clip_ids: dict[str, list] = {s: [] for s in sets["set_id"]}
for path in sm.input.shards:
    with safe_open(path, "np") as f:
        ran = json.loads(f.metadata()["set_clips"])
        for s in parts:
            if s in f.keys():
                parts[s].append(f.get_tensor(s).astype(np.float32))
                clip_ids[s] += ran[s]
knocked = {}
for s, v in parts.items():
    if v:
        where = pd.Series(range(len(clip_ids[s])), index=clip_ids[s])
        knocked[s] = np.vstack(v)[where.loc[[c for c in matrix.clip_ids if c in where.index]].to_numpy()]
settings = ProbeSettings(inner_folds=p.inner_folds, Cs=tuple(p.Cs), permutations=0,
                         max_iter=p.max_iter, seed=p.probe_seed)
per_fold, summary = knockout_effects(matrix, knocked, sets, pd.read_parquet(sm.input.clips), spec, settings)
notes = [] if len(sets) else ["knock-out: no hidden-layer cross_fit unit was selected, nothing knocked out"]
record = provenance.build(sm.rule, p, provenance.upstream_model(sm.input.activations),
                          wildcards=sm.wildcards, notes=notes)
provenance.write_table(summary, sm.output.table, record)
provenance.write_table(per_fold, sm.output.folds, record)
metadata = {"Software": "speechneurons", "Description": json.dumps(record, sort_keys=True)}
save_figure(plot_knockout(summary, spec), sm.output.figure, metadata)

"""Snakemake adapter: cascading model randomisation on a sample (rule reliability_randomisation)."""

import time

import torch

from speechneurons import provenance
from speechneurons.logs import log_to_file
from speechneurons.models import load_speech_model
from speechneurons.reliability.common import Combination
from speechneurons.reliability.sample import study_sample
from speechneurons.reliability.randomisation import RandomisationSettings, randomisation_check

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
torch.set_num_threads(sm.threads)
p = sm.params
model = load_speech_model(p.model, p.revision, p.device)
clips, units = study_sample(model, sm.input.clips, sm.input.ablated,
                            sm.input.units if p.units_from == "selection" else None,
                            {"sites": p.sites, "layers": p.layers, "neurons": p.neurons},
                            p.clips, p.units, p.seed)
settings = RandomisationSettings(clips=p.clips, units=p.units, threshold=p.threshold, seed=p.seed,
                                 layers=None if p.cascade_layers == "all" else tuple(p.cascade_layers))
started = time.perf_counter()
table, flags = randomisation_check(model, clips, p.root, units, Combination.from_config(p.combination),
                                   settings, p.ablation_seed, p.perturbations_per_eval)
record = provenance.build(sm.rule, p, provenance.model_record(p.model, p.revision), wildcards=sm.wildcards)
record["seconds"] = time.perf_counter() - started  # the check's wall time, for the report
provenance.write_table(table, sm.output.table, record)
provenance.write_table(flags, sm.output.units, record)

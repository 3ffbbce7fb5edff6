"""Snakemake adapter: deletion curves and additivity gaps on a sample (rule reliability_deletion)."""

import time

from speechneurons import provenance
from speechneurons.combination import Combination
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.models import load_speech_model
from speechneurons.sae_site import attach_saes
from speechneurons.reliability.sample import study_sample
from speechneurons.reliability.deletion import DeletionSettings, deletion_check

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.params.threads)  # compute.threads, whatever --cores
p = sm.params
model = load_speech_model(p.model, p.revision, p.compute["device"])
if p.sae:  # the sae site: latents of each layer's SAE
    attach_saes(model, p.sae["site"], p.sae["layers"], sm.input.saes)
settings = DeletionSettings.from_config(p.deletion, seed=p.seed)
clips, units = study_sample(model, sm.input.clips, sm.input.ablated, p.ablation, sm.input.units,
                            settings.clips, settings.units, settings.seed)
combos = [Combination.from_config(c) for c in p.combinations]
started = time.perf_counter()
table, curves = deletion_check(model, clips, p.root, units, combos, settings, p.ablation["seed"],
                               p.compute["perturbations_per_eval"])
record = provenance.build(sm.rule, p, provenance.model_record(p.model, p.revision), wildcards=sm.wildcards)
record["seconds"] = time.perf_counter() - started  # the check's wall time, for the report
provenance.write_table(table, sm.output.table, record)
provenance.write_table(curves, sm.output.curves, record)

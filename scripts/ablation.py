"""Snakemake adapter: segment ablation of one shard for one parameter combination (rule ablation)."""

import pandas as pd
import torch

from speechneurons import provenance
from speechneurons.ablation.engine import Units
from speechneurons.ablation.run import AblationSettings, ablate_clips, selected_units
from speechneurons.unit_arrays import write_unit_arrays
from speechneurons.logs import log_to_file
from speechneurons.models import load_speech_model
from speechneurons.shards import shard_clips

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
torch.set_num_threads(sm.threads)

p = sm.params
clips = shard_clips(pd.read_parquet(sm.input.clips), p.shard, p.num_shards)
model = load_speech_model(p.model, p.revision, p.device)
if p.units_from == "selection":  # the selected units, each once
    units = selected_units(sm.input.units)
else:
    units = Units.from_config(p.sites, p.layers, p.neurons)
settings = AblationSettings(
    units=units,
    baseline=p.baseline,
    segment_ms=p.segment_ms,
    reduction=p.reduction,
    perturbations_per_eval=p.perturbations_per_eval,
    seed=p.seed,
    voicing_threshold_db=p.voicing_threshold_db,
)
result = ablate_clips(model, clips, p.root, settings)
record = provenance.build(sm.rule, p, provenance.model_record(p.model, p.revision), wildcards=sm.wildcards)
write_unit_arrays(sm.output.attributions, result.curves, result.units, p.storage_dtype, record)
provenance.write_table(result.segments, sm.output.segments, record)
provenance.write_table(result.summary, sm.output.summary, record)
provenance.write_table(result.failed, sm.output.failed, record)

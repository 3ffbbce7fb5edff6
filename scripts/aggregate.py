"""Snakemake adapter: per-(clip, unit) and per-condition tables (rule aggregate)."""

import pandas as pd

from speechneurons.logs import log_to_file
from speechneurons.tables import clip_unit_table, condition_table

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])

summaries = pd.concat([pd.read_parquet(path) for path in sm.input.summaries], ignore_index=True)
clip_units = clip_unit_table(summaries, pd.read_parquet(sm.input.clips))
clip_units.to_parquet(sm.output.clip_units, index=False)
condition_table(clip_units).to_parquet(sm.output.conditions, index=False)

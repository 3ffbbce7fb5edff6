"""Snakemake adapter: per-(clip, unit) and per-condition tables (rule aggregate)."""

import pandas as pd

from speechneurons import provenance
from speechneurons.datasets import corpus_spec
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.aggregate import clip_unit_table, condition_table
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)

summaries = pd.concat([read_parquet(path) for path in sm.input.summaries], ignore_index=True)
spec = corpus_spec(sm.params.corpus)
clip_units = clip_unit_table(summaries, read_parquet(sm.input.clips), spec)
record = provenance.build(sm.rule, sm.params, provenance.upstream_model(sm.input.summaries), wildcards=sm.wildcards)
provenance.write_table(clip_units, sm.output.clip_units, record)
provenance.write_table(condition_table(clip_units, spec), sm.output.conditions, record)

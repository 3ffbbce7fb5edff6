"""Snakemake adapter: scan RAVDESS into clips.parquet and rejected.parquet (rule index)."""

import logging

from speechneurons import provenance
from speechneurons.datasets.ravdess import IndexFilters, build_index, iter_reasons
from speechneurons.logs import log_to_file

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
log = logging.getLogger("index")

result = build_index(sm.params.root, IndexFilters.from_config(sm.params.filters),
                     min_duration_s=sm.params.min_duration_s)
for note in result.notes:
    log.info(note)
for line in iter_reasons(result.rejected):
    log.warning("rejected %s", line)
record = provenance.build(sm.rule, sm.params, wildcards=sm.wildcards)
provenance.write_table(result.clips, sm.output.clips, record)
provenance.write_table(result.rejected, sm.output.rejected, record)

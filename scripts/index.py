"""Snakemake adapter: scan RAVDESS into clips.parquet and rejected.parquet (rule index)."""

import logging

from speechneurons.datasets.ravdess import IndexFilters, build_index, iter_reasons
from speechneurons.logs import log_to_file

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
log = logging.getLogger("index")

result = build_index(sm.params.root, IndexFilters.from_config(sm.params.filters))
for note in result.notes:
    log.info(note)
for line in iter_reasons(result.rejected):
    log.warning("rejected %s", line)
result.clips.to_parquet(sm.output.clips, index=False)
result.rejected.to_parquet(sm.output.rejected, index=False)

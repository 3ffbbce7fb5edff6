"""Snakemake adapter: the failed-clips table and the problems page of the report (rule problems)."""

import logging
from pathlib import Path

from speechneurons import provenance
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.problems import failed_clips, not_computed, problems_page
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
log = logging.getLogger("problems")

failed = failed_clips(sm.input.failed)
missing = not_computed(dict(zip(sm.params.names, sm.input.noted)))
for name, notes in missing.items():
    for note in notes:
        log.warning("%s: %s", name, note)
log.info("%d failed clip(s), %d table(s) with analyses not computed", len(failed), len(missing))
record = provenance.build(sm.rule, sm.params, provenance.upstream_model(sm.input.failed),
                          wildcards=sm.wildcards)
provenance.write_table(failed, sm.output.table, record)
Path(sm.output.page).write_text(problems_page(read_parquet(sm.input.rejected), failed, missing,
                                              read_parquet(sm.input.clips), sm.params.names))

"""Snakemake adapter: scan the corpus into clips.parquet and rejected.parquet (rule index)."""

import logging

from speechneurons import provenance
from speechneurons.datasets import load_corpus
from speechneurons.datasets.index import IndexFilters, build_index, iter_reasons
from speechneurons.logs import log_to_file

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
log = logging.getLogger("index")

corpus = load_corpus(sm.params.corpus["name"], sm.params.corpus["manifest"])
log.info("corpus %s: %s", corpus.spec.name, corpus.spec.describe())
result = build_index(corpus, sm.params.root, IndexFilters.from_config(sm.params.filters, corpus.spec),
                     min_duration_s=sm.params.min_duration_s, max_duration_s=sm.params.max_duration_s)
for note in result.notes:
    log.info(note)
for line in iter_reasons(result.rejected):
    log.warning("rejected %s", line)
record = provenance.build(sm.rule, sm.params, wildcards=sm.wildcards)
provenance.write_table(result.clips, sm.output.clips, record)
provenance.write_table(result.rejected, sm.output.rejected, record)

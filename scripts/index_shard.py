"""Snakemake adapter: one shard's part of the index, its clips and rejected files (rule index_shard)."""

import logging

from speechneurons import provenance
from speechneurons.datasets import load_corpus
from speechneurons.datasets.index import IndexFilters, index_shard, iter_reasons
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
log = logging.getLogger("index")
p = sm.params

corpus = load_corpus(p.corpus["name"], p.corpus["manifest"])
part = index_shard(corpus, p.root, IndexFilters.from_config(p.filters, corpus.spec), p.shard, p.num_shards,
                   min_duration_s=p.min_duration_s, max_duration_s=p.max_duration_s)
log.info("shard %d of %d: %d valid, %d kept, %d rejected", p.shard, p.num_shards, part.valid,
         len(part.clips), len(part.rejected))
for line in iter_reasons(part.rejected):
    log.warning("rejected %s", line)
record = provenance.build(sm.rule, p, wildcards=sm.wildcards)
provenance.write_table(part.clips, sm.output.clips, {**record, "valid_clips": part.valid})
provenance.write_table(part.rejected, sm.output.rejected, record)

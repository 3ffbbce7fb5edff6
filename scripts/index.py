"""Snakemake adapter: gather the shards' parts into clips.parquet and rejected.parquet (rule index)."""

import logging

from speechneurons import provenance
from speechneurons.datasets import load_corpus
from speechneurons.datasets.index import IndexFilters, IndexShard, gather_index
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
log = logging.getLogger("index")

corpus = load_corpus(sm.params.corpus["name"], sm.params.corpus["manifest"])
log.info("corpus %s: %s", corpus.spec.name, corpus.spec.describe())
parts = [IndexShard(read_parquet(clips), read_parquet(rejected),
                    provenance.read_provenance(clips)["valid_clips"])
         for clips, rejected in zip(sm.input.clips, sm.input.rejected)]
result = gather_index(parts, corpus, sm.params.root, IndexFilters.from_config(sm.params.filters, corpus.spec))
for note in result.notes:
    log.info(note)
record = provenance.build(sm.rule, sm.params, wildcards=sm.wildcards)
provenance.write_table(result.clips, sm.output.clips, record)
provenance.write_table(result.rejected, sm.output.rejected, record)

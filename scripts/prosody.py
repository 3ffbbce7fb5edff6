"""Snakemake adapter: Praat's prosody track of every clip of one shard (rule prosody)."""

from speechneurons import provenance
from speechneurons.datasets import corpus_spec
from speechneurons.logs import log_to_file
from speechneurons.prosody import ProsodySettings, prosody_tracks
from speechneurons.shards import shard_clips
from speechneurons.threads import pin_threads
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)

p = sm.params
clips = shard_clips(read_parquet(sm.input.clips), p.shard, p.shards)
settings = ProsodySettings.from_config(p.prosody)
tracks, failed = prosody_tracks(clips, p.root, settings, corpus_spec(p.corpus).group)
record = provenance.build(sm.rule, p, wildcards=sm.wildcards)
provenance.write_table(tracks, sm.output.tracks, record)
provenance.write_table(failed, sm.output.failed, record)

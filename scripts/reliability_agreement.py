"""Snakemake adapter: agreement of attribution curves across ablation settings (rule reliability_agreement)."""

from speechneurons import provenance
from speechneurons.combination import Combination
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.reliability.agreement import CurveSource, agreement

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
p = sm.params
sources = {Combination.from_config(c): CurveSource(c["attributions"], c["segments"]) for c in p.combinations}
per_unit, per_layer, notes = agreement(sources)
record = provenance.build(sm.rule, p, provenance.upstream_model(sm.input.segments),
                          wildcards=sm.wildcards, notes=notes)
provenance.write_table(per_unit, sm.output.units, record)
provenance.write_table(per_layer, sm.output.layers, record)

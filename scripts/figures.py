"""Snakemake adapter: the per-clip attribution figure and the target-level comparison (rule figures)."""

from pathlib import Path

from speechneurons import provenance
from speechneurons.ablation.store import read_attributions
from speechneurons.audio import MODEL_SAMPLE_RATE, load_waveform
from speechneurons.datasets import corpus_spec
from speechneurons.figures import (choose_example, clip_figure_units, not_drawn, plot_example_clip,
                                   plot_level_comparison, save_figure, unit_label)
from speechneurons.logs import log_to_file
from speechneurons.prosody import ProsodyTracks
from speechneurons.threads import pin_threads
from speechneurons.schemas import unit_rows
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
p = sm.params
record = provenance.build(sm.rule, p, provenance.upstream_model([sm.input.clip_units]), wildcards=sm.wildcards)
metadata = provenance.png_metadata(record)
spec = corpus_spec(p.corpus)
clip_units = read_parquet(sm.input.clip_units)
f = p.figures
if clip_units.empty:  # nothing was ablated (an empty selection)
    for output, what in ((sm.output.clip, "example clip"), (sm.output.levels, "attribution by level")):
        save_figure(not_drawn(what, "no unit was ablated (see the problems page)"), output, metadata)
else:
    clip_id, site, layer, neuron = choose_example(clip_units, f["clip_id"], f["layer"], f["neuron"], f["site"])
    clip = read_parquet(sm.input.clips).set_index("clip_id").loc[clip_id]
    # the example unit, and the two strongest top units of the clip's target level beside it
    units = clip_figure_units(read_parquet(sm.input.selected), site, layer, neuron, spec.target, clip[spec.target])
    attributions = read_attributions(sm.input.attributions, sm.input.segments, [clip_id], units)
    wave = load_waveform(Path(p.root) / clip["path"])
    prosody = ProsodyTracks.read(sm.input.prosody)
    track = prosody.track(clip_id) if clip_id in prosody else None
    save_figure(plot_example_clip(clip_id, clip, units, attributions, wave, MODEL_SAMPLE_RATE, spec, track),
                sm.output.clip, metadata)
    levels = plot_level_comparison(unit_rows(clip_units, site, layer, neuron), spec, unit_label(site, layer, neuron))
    save_figure(levels, sm.output.levels, metadata)

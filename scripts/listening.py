"""Snakemake adapter: one HTML page per chosen clip with audio and attribution (rule listening)."""

from pathlib import Path

import pandas as pd

from speechneurons.ablation.store import read_attributions
from speechneurons.datasets import corpus_spec
from speechneurons.datasets.spec import SPEAKER
from speechneurons.audio import MODEL_SAMPLE_RATE, load_waveform
from speechneurons.figures import choose_example, clip_caption, unit_label
from speechneurons.listen import clip_section, listening_clips, listening_page
from speechneurons.logs import log_to_file

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
p = sm.params

spec = corpus_spec(p.corpus)
clips = pd.read_parquet(sm.input.clips).set_index("clip_id")
clip_units = pd.read_parquet(sm.input.clip_units)
_, site, layer, neuron = choose_example(clip_units, p.figures["clip_id"], p.figures["layer"], p.figures["neuron"],
                                     p.figures["site"])
label = unit_label(site, layer, neuron)
unit = pd.DataFrame({"site": [site], "layer": [layer], "neuron": [neuron]})
chosen = listening_clips(clip_units, site, layer, neuron, p.figures["listen_per_level"], spec.target)
curves = read_attributions(sm.input.attributions, sm.input.segments, chosen["clip_id"], unit)
sections = []
for clip_id in chosen["clip_id"]:
    clip = clips.loc[clip_id]
    title = f"{clip_id}: {clip_caption(clip, spec)} ({SPEAKER} {clip[SPEAKER]})"
    sections.append(clip_section(title, load_waveform(Path(p.root) / clip["path"]), MODEL_SAMPLE_RATE,
                                 curves[curves["clip_id"] == clip_id].sort_values("segment")))
combo = ", ".join(f"{k} {v}" for k, v in sm.wildcards.items())
page = listening_page(f"Listen: {label}", f"Attribution of {label} ({combo}).", sections)
Path(sm.output[0]).write_text(page)

rule figures:
    input:
        clips=INDEX_CLIPS,
        clip_units=CLIP_UNITS,
        attributions=expand(ATTRIBUTIONS, shard=SHARDS, allow_missing=True),
        segments=expand(SEGMENTS, shard=SHARDS, allow_missing=True),
    output:
        clip=report(
            FIG_CLIP,
            caption="../report/clip_attribution.rst",
            category="Attribution",
            subcategory="baseline {baseline}, {segment_ms} ms, {reduction}",
            labels={"figure": "one clip"},
        ),
        emotions=report(
            FIG_EMOTIONS,
            caption="../report/emotion_comparison.rst",
            category="Attribution",
            subcategory="baseline {baseline}, {segment_ms} ms, {reduction}",
            labels={"figure": "emotions"},
        ),
    params:
        root=DATASET["root"],
        clip_id=FIGURES["clip_id"],
        site=FIGURES["site"],
        layer=FIGURES["layer"],
        neuron=FIGURES["neuron"],
        code=code_version("figures.py", "ablation/store.py", "audio.py"),
    log:
        f"results/logs/figures/{COMBO}.log",
    script:
        "../scripts/figures.py"

rule figures:
    input:
        clips=INDEX_CLIPS,
        clip_units=CLIP_UNITS,
        selected=SELECTED_UNITS,
        attributions=expand(ATTRIBUTIONS, shard=SHARDS, allow_missing=True),
        segments=expand(SEGMENTS, shard=SHARDS, allow_missing=True),
        prosody=expand(PROSODY_TRACKS, shard=SHARDS),
    output:
        clip=report(
            FIG_CLIP,
            caption="../report/clip_attribution.rst",
            category="3 Temporal patterns",
            subcategory=combo_label(),
            labels={"figure": "one clip"},
        ),
        clip_pdf=pdf(FIG_CLIP),
        levels=report(
            FIG_LEVELS,
            caption="../report/level_comparison.rst",
            category=CATEGORY[2],
            subcategory=combo_label(),
            labels={"figure": f"by {SPEC.target}"},
        ),
        levels_pdf=pdf(FIG_LEVELS),
    log:
        f"{LOGS}/figures/{COMBO}.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        corpus=CORPUS,
        root=DATASET["root"],
        figures=section(FIGURES, "clip_id", "site", "layer", "neuron"),
        code=code_version("figures"),
    script:
        "../scripts/figures.py"

rule aggregate:
    input:
        clips=INDEX_CLIPS,
        summaries=expand(SUMMARIES, shard=SHARDS, allow_missing=True),
    output:
        clip_units=CLIP_UNITS,
        conditions=CONDITIONS,
    log:
        f"{LOGS}/aggregate/{COMBO}.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        corpus=CORPUS,
        code=code_version("aggregate"),
    script:
        "../scripts/aggregate.py"

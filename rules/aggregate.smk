rule aggregate:
    input:
        clips=INDEX_CLIPS,
        summaries=expand(SUMMARIES, shard=SHARDS, allow_missing=True),
    output:
        clip_units=CLIP_UNITS,
        conditions=CONDITIONS,
    params:
        corpus=CORPUS,
        code=code_version("aggregate"),
    log:
        f"{LOGS}/aggregate/{COMBO}.log",
    script:
        "../scripts/aggregate.py"

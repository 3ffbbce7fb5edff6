rule index:
    output:
        clips=INDEX_CLIPS,
        rejected=INDEX_REJECTED,
    params:
        corpus=CORPUS,
        root=DATASET["root"],
        filters=DATASET["filters"],
        min_duration_s=DATASET["min_duration_s"],
        max_duration_s=DATASET["max_duration_s"],
        code=code_version("index"),
        data=DATA_STATE.index,
    log:
        "results/logs/index.log",
    script:
        "../scripts/index.py"

rule selectivity:
    input:
        clips=INDEX_CLIPS,
        activations=expand(ACTIVATIONS, shard=SHARDS, allow_missing=True),
    output:
        selectivity=SELECTIVITY,
        replication=REPLICATION,
    log:
        f"{LOGS}/selectivity.log",
    conda:
        "../envs/speechneurons.yaml"
    threads: COMPUTE["threads"]
    params:
        corpus=CORPUS,
        statistic=STATS["activation"],
        permutations=STATS["permutations"],
        fdr_alpha=STATS["fdr_alpha"],
        seed=STATS["seed"],
        mixed_top_units=STATS["mixed_top_units"],
        replication_top=STATS["replication_top"],
        code=code_version("selectivity"),
    script:
        "../scripts/selectivity.py"


rule select_units:
    input:
        clips=INDEX_CLIPS,
        activations=expand(ACTIVATIONS, shard=SHARDS, allow_missing=True),
        selectivity=SELECTIVITY,
    output:
        SELECTED_UNITS,
    log:
        f"{LOGS}/select_units.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        corpus=CORPUS,
        statistic=STATS["activation"],
        top_k=SELECTION["top_k"],
        explicit=SELECTION["explicit"],
        random_controls=SELECTION["random_controls"],
        seed=SELECTION["seed"],
        folds=SELECTION["folds"],
        require_selective=SELECTION["require_selective"],
        fdr_alpha=STATS["fdr_alpha"],
        permutations=STATS["permutations"],
        code=code_version("select_units"),
    script:
        "../scripts/select_units.py"

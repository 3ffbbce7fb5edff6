# The index in one job per shard (a changed file reruns its own shard's part: param `data`) and a
# gather that checks clip ids across shards, caps cells and writes the study's clip table.
rule index_shard:
    output:
        clips=INDEX_SHARD_CLIPS,
        rejected=INDEX_SHARD_REJECTED,
    log:
        "results/logs/index/shard-{shard}.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        corpus=CORPUS,
        root=DATASET["root"],
        filters=DATASET["filters"],
        min_duration_s=DATASET["min_duration_s"],
        max_duration_s=DATASET["max_duration_s"],
        shard=lambda wildcards: int(wildcards.shard),
        num_shards=COMPUTE["shards"],
        code=code_version("index_shard"),
        data=shard_data,
    script:
        "../scripts/index_shard.py"


rule index:
    input:
        clips=expand(INDEX_SHARD_CLIPS, shard=SHARDS),
        rejected=expand(INDEX_SHARD_REJECTED, shard=SHARDS),
    output:
        clips=INDEX_CLIPS,
        rejected=INDEX_REJECTED,
    log:
        "results/logs/index.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        corpus=CORPUS,
        root=DATASET["root"],
        filters=DATASET["filters"],
        code=code_version("index"),
    script:
        "../scripts/index.py"

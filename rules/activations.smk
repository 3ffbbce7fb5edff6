rule activations:
    input:
        clips=INDEX_CLIPS,
        model=model_input(),
    output:
        ACTIVATIONS,
    params:
        root=DATASET["root"],
        model=model_ref,
        revision=MODEL["revision"],
        device=COMPUTE["device"],
        shard=lambda wildcards: int(wildcards.shard),
        num_shards=COMPUTE["shards"],
    threads: COMPUTE["threads"]
    log:
        "results/logs/activations/shard-{shard}.log",
    script:
        "../scripts/activations.py"

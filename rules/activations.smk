rule activations:
    input:
        clips=shard_index,
        model=model_input,
    output:
        **({"frames": ACTIVATION_FRAMES} if ACTIVATIONS_CFG["frames"] else {}),
        pooled=ACTIVATIONS,
        failed=ACTIVATIONS_FAILED,
    log:
        f"{LOGS}/activations/shard-{{shard}}.log",
    benchmark:
        f"{BENCH}/activations/shard-{{shard}}.tsv"
    conda:
        "../envs/speechneurons.yaml"
    threads: COMPUTE["threads"]
    params:
        # the threads its numbers are computed with: the config, never --cores (bits follow them)
        threads=COMPUTE["threads"],
        root=DATASET["root"],
        model=model_ref,
        revision=model_revision,
        compute=section(COMPUTE, "device", "shards"),
        shard=lambda wildcards: int(wildcards.shard),
        data=shard_data,
        activations=section(ACTIVATIONS_CFG, "sites", "frames"),
        code=code_version("activations"),
    script:
        "../scripts/activations.py"

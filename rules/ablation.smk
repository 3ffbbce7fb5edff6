rule ablation:
    input:
        clips=shard_index,
        model=model_input,
        saes=SAE_FILES,
        units=ablation_units_input,
    output:
        attributions=ATTRIBUTIONS,
        segments=SEGMENTS,
        summary=SUMMARIES,
        failed=ABLATION_FAILED,
    log:
        f"{LOGS}/ablation/{COMBO}/shard-{{shard}}.log",
    benchmark:
        f"{BENCH}/ablation/{COMBO}/shard-{{shard}}.tsv"
    conda:
        "../envs/speechneurons.yaml"
    threads: COMPUTE["threads"]
    params:
        # the threads its numbers are computed with: the config, never --cores (bits follow them)
        threads=COMPUTE["threads"],
        root=DATASET["root"],
        model=model_ref,
        revision=model_revision,
        sae=SAE_SITE,
        compute=section(COMPUTE, "device", "shards", "perturbations_per_eval"),
        shard=lambda wildcards: int(wildcards.shard),
        data=shard_data,
        ablation=section(ABLATION, *ABLATION_UNITS, "seed", "loudness_threshold_db"),
        storage_dtype=ABLATION["storage_dtype"],
        code=code_version("ablation"),
        baseline_code=baseline_code,
    script:
        "../scripts/ablation.py"

rule ablation:
    input:
        clips=shard_index,
        model=model_input,
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
        root=DATASET["root"],
        model=model_ref,
        revision=model_revision,
        device=COMPUTE["device"],
        shard=lambda wildcards: int(wildcards.shard),
        data=shard_data,
        num_shards=COMPUTE["shards"],
        perturbations_per_eval=COMPUTE["perturbations_per_eval"],
        units_from=ABLATION["units_from"],
        sites=ABLATION["sites"],
        layers=ABLATION["layers"],
        neurons=ABLATION["neurons"],
        baseline=lambda wildcards: wildcards.baseline,
        segment_ms=lambda wildcards: int(wildcards.segment_ms),
        reduction=lambda wildcards: wildcards.reduction,
        seed=ABLATION["seed"],
        voicing_threshold_db=ABLATION["voicing_threshold_db"],
        storage_dtype=ABLATION["storage_dtype"],
        code=code_version("ablation"),
        baseline_code=baseline_code,
    script:
        "../scripts/ablation.py"

# Sparse-autoencoder features (sae.enabled): the asked layers' frames, one job per shard (a
# forward pass per clip), then one SAE per layer trained on the training speakers' frames.


rule sae_frames:
    input:
        clips=shard_index,
        model=model_input,
    output:
        frames=SAE_FRAMES,
        failed=SAE_FRAMES_FAILED,
    log:
        f"{LOGS}/sae/frames-{{shard}}.log",
    benchmark:
        f"{BENCH}/sae/frames-{{shard}}.tsv"
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
        sae=section(SAE_CFG, "site", "layers"),
        code=code_version("sae_frames"),
    script:
        "../scripts/sae_frames.py"


rule sae_train:
    input:
        clips=INDEX_CLIPS,
        frames=expand(SAE_FRAMES, shard=SHARDS, allow_missing=True),
        failed=expand(SAE_FRAMES_FAILED, shard=SHARDS, allow_missing=True),
    output:
        sae=SAE_FILE,
        quality=SAE_LAYER_QUALITY,
    log:
        f"{LOGS}/sae/train-{{sae_layer}}.log",
    benchmark:
        f"{BENCH}/sae/train-{{sae_layer}}.tsv"
    conda:
        "../envs/speechneurons.yaml"
    threads: COMPUTE["threads"]
    params:
        # the threads its numbers are computed with: the config, never --cores (bits follow them)
        threads=COMPUTE["threads"],
        corpus=CORPUS,
        site=SAE_CFG["site"],
        sae=SAE_TRAINING,
        device=COMPUTE["device"],
        code=code_version("sae_train"),
    script:
        "../scripts/sae_train.py"


# The latents of the cache: each shard's stored frames encoded by the trained SAEs and pooled (no
# forward pass), so that a retrained SAE reruns these jobs and not the activation pass.
rule sae_activations:
    input:
        frames=SAE_FRAMES,
        frames_failed=SAE_FRAMES_FAILED,
        saes=SAE_FILES,
    output:
        pooled=SAE_ACTIVATIONS,
    log:
        f"{LOGS}/sae/activations-{{shard}}.log",
    benchmark:
        f"{BENCH}/sae/activations-{{shard}}.tsv"
    conda:
        "../envs/speechneurons.yaml"
    threads: COMPUTE["threads"]
    params:
        # the threads its numbers are computed with: the config, never --cores (bits follow them)
        threads=COMPUTE["threads"],
        sae=section(SAE_CFG, "site", "layers"),
        device=COMPUTE["device"],
        code=code_version("sae_activations"),
    script:
        "../scripts/sae_activations.py"


rule sae_report:
    input:
        quality=expand(
            SAE_LAYER_QUALITY, sae_layer=SAE_CFG["layers"], allow_missing=True
        ),
    output:
        table=SAE_QUALITY,
        figure=report(
            FIG_SAE_QUALITY,
            caption="../report/sae_quality.rst",
            category="Features (sparse autoencoders)",
            subcategory=model_label(),
        ),
        figure_pdf=pdf(FIG_SAE_QUALITY),
        page=report(
            SAE_PAGE,
            caption="../report/sae_page.rst",
            category="Features (sparse autoencoders)",
            subcategory=model_label(),
        ),
    log:
        f"{LOGS}/sae/report.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        code=code_version("sae_report"),
    script:
        "../scripts/sae_report.py"


rule neurons_vs_features:
    input:
        **({"knockout": KNOCKOUT} if KNOCKOUT_CFG["enabled"] else {}),
        clips=INDEX_CLIPS,
        activations=CACHE_TABLES,
        selectivity=SELECTIVITY,
    output:
        table=NEURONS_VS_FEATURES,
        figure=report(
            FIG_NEURONS_VS_FEATURES,
            caption="../report/neurons_vs_features.rst",
            category="Features (sparse autoencoders)",
            subcategory=model_label(),
        ),
        figure_pdf=pdf(FIG_NEURONS_VS_FEATURES),
    log:
        f"{LOGS}/sae/neurons_vs_features.log",
    conda:
        "../envs/speechneurons.yaml"
    threads: COMPUTE["threads"]
    resources:
        mem_mb=CACHE_MEM_MB,
    params:
        # the threads its numbers are computed with: the config, never --cores (bits follow them)
        threads=COMPUTE["threads"],
        corpus=CORPUS,
        sae=section(SAE_CFG, "site", "layers", "compare_top_k"),
        activation=STATS["activation"],
        probes=section(PROBES_CFG, "folds", "inner_folds", "alphas", "seed"),
        code=code_version("neurons_vs_features"),
    script:
        "../scripts/neurons_vs_features.py"

# Where each factor lives (probes on held-out speakers) and whether the model uses the selected
# units (knock-out against matched random units); the unit browser is in questions.smk.


rule probes:
    input:
        clips=INDEX_CLIPS,
        activations=CACHE_TABLES,
    output:
        table=PROBES,
        figure=report(
            FIG_PROBES,
            caption="../report/probes.rst",
            category="1 Layer specialisation",
            subcategory=model_label(),
        ),
        figure_pdf=pdf(FIG_PROBES),
    log:
        f"{LOGS}/probes.log",
    conda:
        "../envs/speechneurons.yaml"
    threads: COMPUTE["threads"]
    resources:
        mem_mb=CACHE_MEM_MB,
    params:
        # the threads its numbers are computed with: the config, never --cores (bits follow them)
        threads=COMPUTE["threads"],
        corpus=CORPUS,
        sites=PROBES_CFG["sites"],
        probes=section(
            PROBES_CFG,
            "folds",
            "inner_folds",
            "alphas",
            "permutations",
            "seed",
        ),
        code=code_version("probes"),
    script:
        "../scripts/probes.py"


rule knockout_activations:
    input:
        clips=INDEX_CLIPS,
        activations=CACHE_TABLES,
        selected=SELECTED_UNITS,
        model=model_input,
        saes=SAE_FILES,
    output:
        KNOCKOUT_SHARD,
    log:
        f"{LOGS}/knockout/shard-{{shard}}.log",
    benchmark:
        f"{BENCH}/knockout/shard-{{shard}}.tsv"
    conda:
        "../envs/speechneurons.yaml"
    threads: COMPUTE["threads"]
    params:
        # the threads its numbers are computed with: the config, never --cores (bits follow them)
        threads=COMPUTE["threads"],
        corpus=CORPUS,
        root=DATASET["root"],
        model=model_ref,
        revision=model_revision,
        sae=SAE_SITE,
        compute=section(COMPUTE, "device", "shards", "perturbations_per_eval"),
        shard=lambda wildcards: int(wildcards.shard),
        data=shard_data,
        knockout_sites=KNOCKOUT_SITES,
        knockout=section(
            KNOCKOUT_CFG, "value", "random_sets", "nearest", "seed", "layers"
        ),
        code=code_version("knockout_activations"),
    script:
        "../scripts/knockout_activations.py"


rule knockout:
    input:
        clips=INDEX_CLIPS,
        activations=CACHE_TABLES,
        selected=SELECTED_UNITS,
        shards=expand(KNOCKOUT_SHARD, shard=SHARDS, allow_missing=True),
    output:
        table=KNOCKOUT,
        folds=KNOCKOUT_FOLDS,
        figure=report(
            FIG_KNOCKOUT,
            caption="../report/knockout.rst",
            category=CATEGORY[2],
            subcategory=model_label(),
        ),
        figure_pdf=pdf(FIG_KNOCKOUT),
    log:
        f"{LOGS}/knockout.log",
    conda:
        "../envs/speechneurons.yaml"
    threads: COMPUTE["threads"]
    params:
        # the threads its numbers are computed with: the config, never --cores (bits follow them)
        threads=COMPUTE["threads"],
        corpus=CORPUS,
        knockout_sites=KNOCKOUT_SITES,
        knockout=section(
            KNOCKOUT_CFG, "value", "random_sets", "nearest", "seed", "layers"
        ),
        # the probes the knock-out refits (without permutations, on the selection's folds)
        probes=section(PROBES_CFG, "inner_folds", "alphas", "seed"),
        code=code_version("knockout"),
    script:
        "../scripts/knockout.py"


rule unit_browser:
    input:
        unpack(browser_tables),
        clips=INDEX_CLIPS,
        selected=SELECTED_UNITS,
        selectivity=SELECTIVITY,
        activations=CACHE_TABLES,
        attributions=expand(ATTRIBUTIONS, shard=SHARDS, allow_missing=True),
        segments=expand(SEGMENTS, shard=SHARDS, allow_missing=True),
        prosody=expand(PROSODY_TRACKS, shard=SHARDS),
    output:
        report(
            UNIT_BROWSER,
            caption="../report/unit_browser.rst",
            category="Listening to the evidence",
            subcategory=combo_label(),
        ),
    log:
        f"{LOGS}/unit_browser/{COMBO}.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        corpus=CORPUS,
        root=DATASET["root"],
        browser=section(BROWSER_CFG, "units", "clips_per_unit"),
        code=code_version("unit_browser"),
    script:
        "../scripts/unit_browser.py"

# Where each factor lives (probes on held-out speakers) and whether the model uses the selected
# units (knock-out against matched random units); the unit browser is in questions.smk.


rule probes:
    input:
        clips=INDEX_CLIPS,
        activations=expand(ACTIVATIONS, shard=SHARDS, allow_missing=True),
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
    params:
        corpus=CORPUS,
        sites=PROBES_CFG["sites"],
        folds=PROBES_CFG["folds"],
        inner_folds=PROBES_CFG["inner_folds"],
        Cs=PROBES_CFG["Cs"],
        permutations=PROBES_CFG["permutations"],
        max_iter=PROBES_CFG["max_iter"],
        seed=PROBES_CFG["seed"],
        code=code_version("probes"),
    script:
        "../scripts/probes.py"


rule knockout_activations:
    input:
        clips=INDEX_CLIPS,
        activations=expand(ACTIVATIONS, shard=SHARDS, allow_missing=True),
        selected=SELECTED_UNITS,
        model=model_input,
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
        corpus=CORPUS,
        root=DATASET["root"],
        model=model_ref,
        revision=model_revision,
        device=COMPUTE["device"],
        shard=lambda wildcards: int(wildcards.shard),
        data=shard_data,
        num_shards=COMPUTE["shards"],
        value=KNOCKOUT_CFG["value"],
        random_sets=KNOCKOUT_CFG["random_sets"],
        nearest=KNOCKOUT_CFG["nearest"],
        seed=KNOCKOUT_CFG["seed"],
        layers=KNOCKOUT_CFG["layers"],
        code=code_version("knockout_activations"),
    script:
        "../scripts/knockout_activations.py"


rule knockout:
    input:
        clips=INDEX_CLIPS,
        activations=expand(ACTIVATIONS, shard=SHARDS, allow_missing=True),
        selected=SELECTED_UNITS,
        shards=expand(KNOCKOUT_SHARD, shard=SHARDS, allow_missing=True),
    output:
        table=KNOCKOUT,
        folds=KNOCKOUT_FOLDS,
        figure=report(
            FIG_KNOCKOUT,
            caption="../report/knockout.rst",
            category=Q2_CATEGORY,
            subcategory=model_label(),
        ),
        figure_pdf=pdf(FIG_KNOCKOUT),
    log:
        f"{LOGS}/knockout.log",
    conda:
        "../envs/speechneurons.yaml"
    threads: COMPUTE["threads"]
    params:
        corpus=CORPUS,
        value=KNOCKOUT_CFG["value"],
        random_sets=KNOCKOUT_CFG["random_sets"],
        nearest=KNOCKOUT_CFG["nearest"],
        seed=KNOCKOUT_CFG["seed"],
        layers=KNOCKOUT_CFG["layers"],
        inner_folds=PROBES_CFG["inner_folds"],
        Cs=PROBES_CFG["Cs"],
        max_iter=PROBES_CFG["max_iter"],
        probe_seed=PROBES_CFG["seed"],
        code=code_version("knockout"),
    script:
        "../scripts/knockout.py"


rule unit_browser:
    input:
        unpack(browser_tables),
        clips=INDEX_CLIPS,
        selected=SELECTED_UNITS,
        selectivity=SELECTIVITY,
        activations=expand(ACTIVATIONS, shard=SHARDS, allow_missing=True),
        attributions=expand(ATTRIBUTIONS, shard=SHARDS, allow_missing=True),
        segments=expand(SEGMENTS, shard=SHARDS, allow_missing=True),
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
        units=BROWSER_CFG["units"],
        clips_per_unit=BROWSER_CFG["clips_per_unit"],
        code=code_version("unit_browser"),
    script:
        "../scripts/unit_browser.py"

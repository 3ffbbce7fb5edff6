# How far to trust the attributions: agreement across settings, deletion curves and additivity,
# cascading model randomisation, speaker bootstrap; one figure and one page in the report.


rule reliability_agreement:
    input:
        attributions=combos(expand(ATTRIBUTIONS, shard=SHARDS, allow_missing=True)),
        segments=combos(expand(SEGMENTS, shard=SHARDS, allow_missing=True)),
    output:
        units=REL_AGREEMENT_UNITS,
        layers=REL_AGREEMENT,
    log:
        f"{LOGS}/reliability/agreement.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        combinations=combination_files,
        code=code_version("reliability_agreement"),
    script:
        "../scripts/reliability_agreement.py"


rule reliability_deletion:
    input:
        clips=INDEX_CLIPS,
        ablated=first_combination_segments,
        model=model_input,
        saes=SAE_FILES,
        units=ablation_units_input,
    output:
        table=REL_DELETION,
        curves=REL_DELETION_CURVES,
    log:
        f"{LOGS}/reliability/deletion.log",
    benchmark:
        f"{BENCH}/reliability/deletion.tsv"
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
        compute=section(COMPUTE, "device", "perturbations_per_eval"),
        ablation=section(ABLATION, *ABLATION_UNITS, "seed"),
        combinations=combination_settings(),
        deletion=section(
            RELIABILITY_CFG["deletion"], "clips", "units", "steps", "random_orders"
        ),
        seed=RELIABILITY_CFG["seed"],
        code=code_version("reliability_deletion"),
    script:
        "../scripts/reliability_deletion.py"


rule reliability_randomisation:
    input:
        clips=INDEX_CLIPS,
        ablated=first_combination_segments,
        model=model_input,
        saes=SAE_FILES,
        units=ablation_units_input,
    output:
        table=REL_RANDOMISATION,
        units=REL_RANDOMISATION_UNITS,
    log:
        f"{LOGS}/reliability/randomisation.log",
    benchmark:
        f"{BENCH}/reliability/randomisation.tsv"
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
        compute=section(COMPUTE, "device", "perturbations_per_eval"),
        ablation=section(ABLATION, *ABLATION_UNITS, "seed"),
        combination=combination_settings()[0],
        randomisation=section(
            RELIABILITY_CFG["randomisation"], "clips", "units", "layers", "threshold"
        ),
        seed=RELIABILITY_CFG["seed"],
        code=code_version("reliability_randomisation"),
    script:
        "../scripts/reliability_randomisation.py"


rule reliability_bootstrap:
    input:
        clips=INDEX_CLIPS,
        activations=CACHE_TABLES,
        selected=SELECTED_UNITS,
    output:
        units=REL_BOOTSTRAP_UNITS,
        layers=REL_BOOTSTRAP,
    log:
        f"{LOGS}/reliability/bootstrap.log",
    conda:
        "../envs/speechneurons.yaml"
    resources:
        mem_mb=CACHE_MEM_MB,
    params:
        corpus=CORPUS,
        statistic=STATS["activation"],
        bootstrap=section(RELIABILITY_CFG["bootstrap"], "resamples"),
        top_k=SELECTION["top_k"],
        seed=RELIABILITY_CFG["seed"],
        code=code_version("reliability_bootstrap"),
    script:
        "../scripts/reliability_bootstrap.py"


rule reliability_report:
    input:
        agreement=REL_AGREEMENT,
        deletion=REL_DELETION,
        curves=REL_DELETION_CURVES,
        randomisation=REL_RANDOMISATION,
        randomisation_units=REL_RANDOMISATION_UNITS,
        bootstrap_units=REL_BOOTSTRAP_UNITS,
        bootstrap=REL_BOOTSTRAP,
    output:
        figure=report(
            FIG_RELIABILITY,
            caption="../report/reliability.rst",
            category=RELIABILITY_CATEGORY,
            subcategory=model_label(),
        ),
        figure_pdf=pdf(FIG_RELIABILITY),
        page=report(
            RELIABILITY_PAGE,
            caption="../report/reliability_page.rst",
            category=RELIABILITY_CATEGORY,
            subcategory=model_label(),
        ),
    log:
        f"{LOGS}/reliability/report.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        corpus=CORPUS,
        code=code_version("reliability_report"),
    script:
        "../scripts/reliability_report.py"

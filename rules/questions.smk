# The original guide's five research questions: tables and figures, grouped in the report.


rule layer_specialisation:
    input:
        SELECTIVITY,
    output:
        LAYER_SPECIALISATION,
    log:
        f"{LOGS}/layer_specialisation.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        code=code_version("layer_specialisation"),
    script:
        "../scripts/layer_specialisation.py"


rule selectivity_figures:
    input:
        clips=INDEX_CLIPS,
        selectivity=SELECTIVITY,
        selected=SELECTED_UNITS,
        activations=CACHE_TABLES,
    output:
        heatmap=report(
            FIG_HEATMAP,
            caption="../report/selectivity_heatmap.rst",
            category="1 Layer specialisation",
            subcategory=model_label(),
        ),
        heatmap_pdf=pdf(FIG_HEATMAP),
        distributions=report(
            FIG_DISTRIBUTIONS,
            caption="../report/unit_distributions.rst",
            category=CATEGORY[2],
            subcategory=model_label(),
        ),
        distributions_pdf=pdf(FIG_DISTRIBUTIONS),
    log:
        f"{LOGS}/selectivity_figures.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        corpus=CORPUS,
        statistic=STATS["activation"],
        code=code_version("selectivity_figures"),
    script:
        "../scripts/selectivity_figures.py"


rule questions:
    input:
        clips=INDEX_CLIPS,
        selected=SELECTED_UNITS,
        clip_units=CLIP_UNITS,
        attributions=expand(ATTRIBUTIONS, shard=SHARDS, allow_missing=True),
        segments=expand(SEGMENTS, shard=SHARDS, allow_missing=True),
        activations=CACHE_TABLES,
        prosody=expand(PROSODY_TRACKS, shard=SHARDS),
    output:
        **{q: QUESTION.replace("{question}", q) for q in QUESTION_TABLES},
    log:
        f"{LOGS}/questions/{COMBO}.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        corpus=CORPUS,
        statistic=STATS["activation"],
        code=code_version("questions"),
    script:
        "../scripts/questions.py"


rule question_figures:
    input:
        temporal=QUESTION.replace("{question}", "temporal_profiles"),
        groups=QUESTION.replace("{question}", "group_contrasts"),
        graded=QUESTION.replace("{question}", "graded_effects"),
    output:
        temporal=report(
            FIG_TEMPORAL,
            caption="../report/temporal_profiles.rst",
            category="3 Temporal patterns",
            subcategory=combo_label(),
        ),
        temporal_pdf=pdf(FIG_TEMPORAL),
        groups=report(
            FIG_GROUPS,
            caption="../report/group_contrasts.rst",
            category=CATEGORY[4],
            subcategory=combo_label(),
        ),
        groups_pdf=pdf(FIG_GROUPS),
        graded=report(
            FIG_GRADED,
            caption="../report/graded_effects.rst",
            category=CATEGORY[5],
            subcategory=combo_label(),
        ),
        graded_pdf=pdf(FIG_GRADED),
    log:
        f"{LOGS}/question_figures/{COMBO}.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        corpus=CORPUS,
        fdr_alpha=STATS["fdr_alpha"],
        code=code_version("question_figures"),
    script:
        "../scripts/question_figures.py"


rule listening:
    input:
        clips=INDEX_CLIPS,
        clip_units=CLIP_UNITS,
        attributions=expand(ATTRIBUTIONS, shard=SHARDS, allow_missing=True),
        segments=expand(SEGMENTS, shard=SHARDS, allow_missing=True),
        prosody=expand(PROSODY_TRACKS, shard=SHARDS),
    output:
        report(
            LISTENING,
            caption="../report/listening.rst",
            category="Listening to the evidence",
            subcategory=combo_label(),
        ),
    log:
        f"{LOGS}/listening/{COMBO}.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        corpus=CORPUS,
        root=DATASET["root"],
        figures=section(
            FIGURES, "clip_id", "site", "layer", "neuron", "listen_per_level"
        ),
        code=code_version("listening"),
    script:
        "../scripts/listening.py"


rule models_by_layer:
    input:
        layers=expand(LAYER_SPECIALISATION, model=MODEL_NAMES),
        probes=expand(PROBES, model=MODEL_NAMES) if PROBES_CFG["enabled"] else [],
    output:
        figure=report(
            FIG_MODELS,
            caption="../report/models_by_layer.rst",
            category="1 Layer specialisation",
            subcategory="all models",
        ),
        pdf=pdf(FIG_MODELS),
        probes=report(
            FIG_MODELS_PROBES,
            caption="../report/probes_by_model.rst",
            category="1 Layer specialisation",
            subcategory="all models",
        ),
        probes_pdf=pdf(FIG_MODELS_PROBES),
    log:
        "results/logs/models_by_layer.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        models=MODEL_NAMES,
        code=code_version("models_by_layer"),
    script:
        "../scripts/models_by_layer.py"


rule unit_prosody:
    input:
        clips=INDEX_CLIPS,
        selected=SELECTED_UNITS,
        clip_units=CLIP_UNITS,
        attributions=expand(ATTRIBUTIONS, shard=SHARDS, allow_missing=True),
        segments=expand(SEGMENTS, shard=SHARDS, allow_missing=True),
        prosody=expand(PROSODY_TRACKS, shard=SHARDS),
    output:
        prosody_units=PROSODY_UNITS,
        prosody_layers=PROSODY_LAYERS,
    log:
        f"{LOGS}/unit_prosody/{COMBO}.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        corpus=CORPUS,
        fdr_alpha=STATS["fdr_alpha"],
        code=code_version("unit_prosody"),
    script:
        "../scripts/unit_prosody.py"


rule prosody_figures:
    input:
        units=PROSODY_UNITS,
        layers=PROSODY_LAYERS,
    output:
        figure=report(
            FIG_PROSODY,
            caption="../report/prosody.rst",
            category="3 Temporal patterns",
            subcategory=combo_label(),
        ),
        figure_pdf=pdf(FIG_PROSODY),
        page=report(
            PROSODY_PAGE,
            caption="../report/prosody_page.rst",
            category="3 Temporal patterns",
            subcategory=combo_label(),
        ),
    log:
        f"{LOGS}/prosody_figures/{COMBO}.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        corpus=CORPUS,
        fdr_alpha=STATS["fdr_alpha"],
        code=code_version("prosody_figures"),
    script:
        "../scripts/prosody_figures.py"

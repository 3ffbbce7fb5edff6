rule selectivity:
    input:
        clips=INDEX_CLIPS,
        activations=CACHE_TABLES,
    output:
        selectivity=SELECTIVITY,
    log:
        f"{LOGS}/selectivity.log",
    conda:
        "../envs/speechneurons.yaml"
    threads: COMPUTE["threads"]
    resources:
        mem_mb=CACHE_MEM_MB,
    params:
        # the threads its numbers are computed with: the config, never --cores (bits follow them)
        threads=COMPUTE["threads"],
        corpus=CORPUS,
        stats=section(
            STATS,
            "activation",
            "permutations",
            "fdr_alpha",
            "seed",
            "mixed_top_units",
            "min_clips_per_cell",
        ),
        code=code_version("selectivity"),
    script:
        "../scripts/selectivity.py"


rule select_units:
    input:
        clips=INDEX_CLIPS,
        activations=CACHE_TABLES,
        selectivity=SELECTIVITY,
    output:
        units=SELECTED_UNITS,
        replication=REPLICATION,
    log:
        f"{LOGS}/select_units.log",
    conda:
        "../envs/speechneurons.yaml"
    resources:
        mem_mb=CACHE_MEM_MB,
    params:
        corpus=CORPUS,
        selection=section(
            SELECTION,
            "top_k",
            "explicit",
            "random_controls",
            "seed",
            "folds",
            "require_selective",
        ),
        stats=section(
            STATS, "activation", "fdr_alpha", "permutations", "min_clips_per_cell"
        ),
        code=code_version("select_units"),
    script:
        "../scripts/select_units.py"

# What the study could not use or compute: rejected files, failed clips, analyses a thin design
# cannot support. One table and one page of the report.


rule problems:
    input:
        rejected=INDEX_REJECTED,
        clips=INDEX_CLIPS,
        failed=[
            *expand(ACTIVATIONS_FAILED, shard=SHARDS, allow_missing=True),
            *expand(PROSODY_FAILED, shard=SHARDS),
            *(
                expand(SAE_FRAMES_FAILED, shard=SHARDS, allow_missing=True)
                if SAE_CFG["enabled"]
                else []
            ),
            *combos(ABLATION_FAILED, shard=SHARDS),
        ],
        noted=list(noted_tables().values()),
    output:
        table=FAILED_CLIPS,
        page=report(
            PROBLEMS_PAGE,
            caption="../report/problems.rst",
            category="0 Rejected, failed, not computed",
            subcategory=model_label(),
        ),
    log:
        f"{LOGS}/problems.log",
    conda:
        "../envs/speechneurons.yaml"
    params:
        names=list(noted_tables().keys()),
        code=code_version("problems"),
    script:
        "../scripts/problems.py"

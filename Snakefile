# speechneurons: which parts of a speech clip drive which neurons of WavLM.
# index_shard[shard] -> activations[shard]; index (gathers the shards) -> selectivity -> select_units
#       -> ablation[combination, shard] -> aggregate -> figures
#       -> probes; knockout_activations[shard] -> knockout; unit_browser[combination]
#       -> reliability_{agreement,deletion,randomisation,bootstrap} -> reliability_report
# The logic lives in the speechneurons package; rules/ only describe the DAG.


# The demo's settings (config.yaml) apply when no --configfile is given; a study config given with
# --configfile means the schema's defaults for every key it does not name, never the demo's.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/model.smk"
include: "rules/index.smk"
include: "rules/activations.smk"
include: "rules/selectivity.smk"
include: "rules/ablation.smk"
include: "rules/aggregate.smk"
include: "rules/figures.smk"
include: "rules/questions.smk"
include: "rules/probes.smk"
include: "rules/reliability.smk"
include: "rules/problems.smk"


report: "report/workflow.rst"


rule all:
    input:
        all_outputs(),
    default_target: True


onsuccess:
    # where to look: the report, the rejected files, failed clips, what was not computed
    print(
        run_summary(
            INDEX_REJECTED,
            {
                m: (
                    FAILED_CLIPS.format(model=m),
                    PROBLEMS_PAGE.format(model=m),
                    {k: v.format(model=m) for k, v in noted_tables().items()},
                )
                for m in MODEL_NAMES
            },
        ),
        file=sys.stderr,
    )


onerror:
    # a full disk leaves empty logs: say so where the user looks (speechneurons.logs)
    if low_disk_note("results"):
        print(low_disk_note("results"), file=sys.stderr)

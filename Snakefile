# speechneurons: which parts of a speech clip drive which neurons of WavLM.
# index_shard[shard] -> activations[shard], prosody[shard]; index (gathers the shards) -> selectivity -> select_units
#       -> ablation[combination, shard] -> aggregate -> figures
#       -> probes; knockout_activations[shard] -> knockout; unit_browser[combination]
#       -> reliability_{agreement,deletion,randomisation,bootstrap} -> reliability_report
#       -> sae_frames[shard] -> sae_train[layer] -> sae_report (sae.enabled)
# The logic lives in the speechneurons package; rules/ only describe the DAG.


# The demo's settings (config.yaml) apply when no --configfile is given; a study config given with
# --configfile means the schema's defaults for every key it does not name, never the demo's.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


# Every job imports the speechneurons package from this checkout, also inside an environment built
# from envs/speechneurons.yaml (--sdm conda), which holds only the package's dependencies.
if workflow.basedir not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")])
    )


# passed on to cluster jobs too
envvars:
    "PYTHONPATH",


include: "rules/config.smk"
include: "rules/paths.smk"
include: "rules/common.smk"
include: "rules/model.smk"
include: "rules/index.smk"
include: "rules/activations.smk"
include: "rules/prosody.smk"
include: "rules/sae.smk"
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
    default_target: True
    input:
        all_outputs(),


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

# The tiny models of a demo or test study (WavLM by default), each built from a seeded config of
# its family and written with save_pretrained under results/models/<folder>.
if TINY:

    rule tiny_model:
        output:
            directory("results/models/{tiny}"),
        log:
            "results/logs/tiny_model/{tiny}.log",
        wildcard_constraints:
            tiny="|".join(map(re.escape, TINY)),
        conda:
            "../envs/speechneurons.yaml"
        params:
            family=lambda wildcards: TINY[wildcards.tiny]["tiny_family"],
            seed=lambda wildcards: TINY[wildcards.tiny]["tiny_seed"],
            code=code_version("build_tiny_model"),
        script:
            "../scripts/build_tiny_model.py"

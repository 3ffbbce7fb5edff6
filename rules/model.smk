# The demo's tiny model (WavLM by default), built from a seeded config and written with save_pretrained.
if MODEL["build_tiny"]:

    rule tiny_model:
        output:
            directory(MODEL["name_or_path"]),
        params:
            family=MODEL["tiny_family"],
            seed=MODEL["tiny_seed"],
            code=code_version("build_tiny_model"),
        log:
            "results/logs/tiny_model.log",
        script:
            "../scripts/build_tiny_model.py"

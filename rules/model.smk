# The demo's tiny WavLM, built from a seeded config and written with save_pretrained.
if MODEL["build_tiny"]:

    rule tiny_model:
        output:
            directory(MODEL["name_or_path"]),
        params:
            seed=MODEL["tiny_seed"],
            code=code_version("models/tiny.py"),
        log:
            "results/logs/tiny_model.log",
        script:
            "../scripts/build_tiny_model.py"

# Praat's prosody track (F0, voicing, level in dB, harmonicity, pauses) of every clip, one job per
# shard. It reads the audio only, so every model of the study shares it.


rule prosody:
    input:
        clips=shard_index,
    output:
        tracks=PROSODY_TRACKS,
        failed=PROSODY_FAILED,
    log:
        "results/logs/prosody/shard-{shard}.log",
    benchmark:
        "results/benchmarks/prosody/shard-{shard}.tsv"
    conda:
        "../envs/speechneurons.yaml"
    params:
        corpus=CORPUS,
        root=DATASET["root"],
        shard=lambda wildcards: int(wildcards.shard),
        shards=COMPUTE["shards"],
        data=shard_data,
        prosody=PROSODY_CFG,
        code=code_version("prosody"),
    script:
        "../scripts/prosody.py"

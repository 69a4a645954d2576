# Tiny models of the real architectures, built for the demo and the tests when a
# model in the config is 'tiny' (random, but for the tiny Stable Diffusion's VAE and
# U-Net, which carry the shipped digit weights when models.tiny_pretrained is set).


include: "functions/tiny_models.smk"


rule tiny_model:
    input:
        tiny_weights,
    output:
        directory(f"{TINY_MODEL_DIR}/tiny-{{kind}}"),
    log:
        f"{LOGS}/tiny_model/{{kind}}.log",
    benchmark:
        benchmark("tiny_model", "kind")
    wildcard_constraints:
        kind="stable-diffusion|llava|gpt",
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("default")
    resources:
        **rule_resources("default"),
    params:
        seed=config["models"]["tiny_seed"],
        resolution=config["models"]["tiny_resolution"],
        pretrained=lambda wildcards: "--pretrained" if tiny_weights(wildcards) else "",
    shell:
        "HF_HUB_OFFLINE=1 python -m vlcp tiny_models {wildcards.kind} {output:q}"
        " --seed {params.seed} --resolution {params.resolution} {params.pretrained} > {log:q} 2>&1"

# Tiny models of the real architectures, built for the demo and the tests when a
# model in the config is 'tiny' (random, but for the tiny Stable Diffusion's VAE and
# U-Net, which carry the shipped digit weights when models.tiny_pretrained is true, or
# weights pretrained on this run's train images when it is 'train').


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
    threads: rule_threads("tiny_model")
    resources:
        **rule_resources("tiny_model"),
    params:
        seed=config["models"]["tiny_seed"],
        resolution=config["models"]["tiny_resolution"],
        pretrained=tiny_weights_option,
    shell:
        "HF_HUB_OFFLINE=1 python -m vlcp tiny_models {wildcards.kind} {output:q}"
        " --seed {params.seed} --resolution {params.resolution} {params.pretrained} > {log:q} 2>&1"


# models.tiny_pretrained: train. The tiny VAE and U-Net pretrained on this run's train images, as the
# shipped weights were on the demo's digits (vlcp/tiny_pretrain.py), at the tiny pipeline's resolution.
rule tiny_pretrain:
    input:
        every_part("index/train"),
    output:
        directory(TINY_WEIGHTS_DIR),
    log:
        f"{LOGS}/tiny_pretrain.log",
    benchmark:
        benchmark("tiny_pretrain")
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("tiny_pretrain")
    resources:
        **rule_resources("tiny_pretrain"),
    params:
        index=every_class("index/train", ".jsonl"),
        root=DATA_ROOT,
        seed=config["models"]["tiny_seed"],
        resolution=config["models"]["tiny_resolution"],
    shell:
        "python -m vlcp tiny_pretrain {output:q} --index {params.index:q} --root {params.root:q}"
        " --seed {params.seed} --resolution {params.resolution} > {log:q} 2>&1"

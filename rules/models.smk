# Tiny random models of the real architectures, built for the demo and the tests
# when a model in the config is 'tiny'.


rule tiny_model:
    output:
        directory(f"{TINY_MODEL_DIR}/tiny-{{kind}}"),
    log:
        f"{LOGS}/tiny_model/{{kind}}.log",
    wildcard_constraints:
        kind="stable-diffusion|llava|gpt",
    params:
        seed=config["models"]["tiny_seed"],
        resolution=config["models"]["tiny_resolution"],
    threads: rule_threads("default")
    resources:
        **rule_resources("default"),
    conda:
        "../envs/gpu.yaml"
    shell:
        "HF_HUB_OFFLINE=1 python -m vlcp tiny_models {wildcards.kind} {output:q}"
        " --seed {params.seed} --resolution {params.resolution} > {log:q} 2>&1"

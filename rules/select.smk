# Real-image baselines (random, herding, k-center): IPC real train images per
# class, one job per (method, IPC, seed, class), written like a distilled set.


rule select:
    input:
        index=f"{RESULTS}/index/train/{{cls}}.jsonl",
        latents=lambda wildcards: [] if wildcards.baseline == "random" else f"{RESULTS}/latents/{wildcards.cls}.safetensors",
    output:
        directory(f"{RESULTS}/distilled/{{baseline}}/ipc{{ipc}}/seed{{seed}}/{{cls}}"),
    log:
        f"{LOGS}/select/{{baseline}}/ipc{{ipc}}/seed{{seed}}/{{cls}}.log",
    params:
        root=DATA_ROOT,
        size=DATASET["eval_size"],
        latents=lambda wildcards, input: f"--latents {shlex.quote(input.latents)}" if input.latents else "",
    resources:
        **rule_resources("default"),
    conda:
        "../envs/cpu.yaml"
    shell:
        "python -m vlcp select --method {wildcards.baseline} --index {input.index:q} {params.latents}"
        " --root {params.root:q} --ipc {wildcards.ipc} --seed {wildcards.seed} --size {params.size}"
        " --out {output:q} > {log:q} 2>&1"

# Real-image baselines (random, herding, k-center): IPC real train images per class,
# a job per (method, IPC, seed, part), written like a distilled set.


include: "functions/select.smk"


rule select:
    input:
        index=part_folder("index/train"),
        latents=selection_latents,
    output:
        out=directory(part_folder("distilled/{baseline}/ipc{ipc}/seed{seed}")),
    log:
        part_log("select/{baseline}/ipc{ipc}/seed{seed}"),
    benchmark:
        benchmark("select", "part", "baseline", "ipc", "seed")
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("select")
    resources:
        **rule_resources("select", per_class=True),
    params:
        index=in_part("index/train", ".jsonl"),
        out=in_part("distilled/{baseline}/ipc{ipc}/seed{seed}"),
        root=DATA_ROOT,
        size=DATASET["eval_size"],
        latents=selection_latent_option,
    shell:
        "python -m vlcp select --method {wildcards.baseline} --index {params.index:q} {params.latents}"
        " --root {params.root:q} --ipc {wildcards.ipc} --seed {wildcards.seed} --size {params.size}"
        " --out {params.out:q} > {log:q} 2>&1"

# Real-image baselines (random, herding, k-center): IPC real train images per class,
# a job per (method, IPC, seed, class or part), written like a distilled set.


include: "functions/select.smk"


SELECT_IN = class_files(index=("index/train", ".jsonl"))


SELECT_OUT = class_files(out=("distilled/{baseline}/ipc{ipc}/seed{seed}", ""))


rule select:
    input:
        **SELECT_IN.input,
        latents=selection_latents,
    output:
        **SELECT_OUT.output(directory),
    log:
        class_log("select/{baseline}/ipc{ipc}/seed{seed}"),
    benchmark:
        benchmark("select", CLASS, "baseline", "ipc", "seed")
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("select")
    resources:
        **rule_resources("select", per_class=True),
    params:
        **SELECT_IN.paths,
        **SELECT_OUT.paths,
        root=DATA_ROOT,
        size=DATASET["eval_size"],
        latents=selection_latent_option,
        part=part_option,
    shell:
        "python -m vlcp select --method {wildcards.baseline} --index {params.index:q} {params.latents}"
        " --root {params.root:q} --ipc {wildcards.ipc} --seed {wildcards.seed} --size {params.size}"
        " --out {params.out:q} {params.part} > {log:q} 2>&1"

# Stage 5: image prototypes, a job per (part, IPC, distillation seed).


rule cluster:
    input:
        latents=part_folder("latents"),
    output:
        clusters=directory(part_folder("clusters/ipc{ipc}/seed{seed}")),
    log:
        part_log("cluster/ipc{ipc}/seed{seed}"),
    benchmark:
        benchmark("cluster", "part", "ipc", "seed")
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("cluster")
    resources:
        **rule_resources("cluster", per_class=True),
    params:
        latents=in_part("latents", ".safetensors"),
        clusters=in_part("clusters/ipc{ipc}/seed{seed}", ".json"),
        centres=in_part("clusters/ipc{ipc}/seed{seed}", ".safetensors"),
        settings=stage_options("cluster"),
    shell:
        "python -m vlcp cluster --latents {params.latents:q} --ipc {wildcards.ipc} --seed {wildcards.seed}"
        " {params.settings}"
        " --out {params.clusters:q} --centres {params.centres:q} > {log:q} 2>&1"

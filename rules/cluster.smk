# Stage 5: image prototypes, a job per (class or part, IPC, distillation seed).


rule cluster:
    input:
        class_file("latents", ".safetensors"),
    output:
        **class_outputs("clusters/ipc{ipc}/seed{seed}", clusters=".json", centres=".safetensors"),
    log:
        class_log("cluster/ipc{ipc}/seed{seed}"),
    benchmark:
        benchmark("cluster", CLASS, "ipc", "seed")
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("cluster")
    resources:
        **rule_resources("cluster", per_class=True),
    params:
        settings=stage_options("cluster"),
        latents=class_paths("latents", ".safetensors"),
        clusters=class_paths("clusters/ipc{ipc}/seed{seed}", ".json"),
        centres=class_paths("clusters/ipc{ipc}/seed{seed}", ".safetensors"),
        part=part_option,
    shell:
        "python -m vlcp cluster --latents {params.latents:q} --ipc {wildcards.ipc} --seed {wildcards.seed}"
        " {params.settings}"
        " --out {params.clusters:q} --centres {params.centres:q} {params.part} > {log:q} 2>&1"

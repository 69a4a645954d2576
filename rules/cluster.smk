# Stage 5: image prototypes, a job per (class or part, IPC, distillation seed).

CLUSTER_IN = class_files(latents=("latents", ".safetensors"))
CLUSTER_OUT = class_files(
    clusters=("clusters/ipc{ipc}/seed{seed}", ".json"), centres=("clusters/ipc{ipc}/seed{seed}", ".safetensors")
)


rule cluster:
    input:
        **CLUSTER_IN.input,
    output:
        **CLUSTER_OUT.output(),
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
        **CLUSTER_IN.paths,
        **CLUSTER_OUT.paths,
        settings=stage_options("cluster"),
        part=part_option,
    shell:
        "python -m vlcp cluster --latents {params.latents:q} --ipc {wildcards.ipc} --seed {wildcards.seed}"
        " {params.settings}"
        " --out {params.clusters:q} --centres {params.centres:q} {params.part} > {log:q} 2>&1"

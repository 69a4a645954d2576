# Stage 5: image prototypes, one job per (class, IPC, distillation seed).


rule cluster:
    input:
        f"{RESULTS}/latents/{{cls}}.safetensors",
    output:
        clusters=f"{RESULTS}/clusters/ipc{{ipc}}/seed{{seed}}/{{cls}}.json",
        centres=f"{RESULTS}/clusters/ipc{{ipc}}/seed{{seed}}/{{cls}}.safetensors",
    log:
        f"{LOGS}/cluster/ipc{{ipc}}/seed{{seed}}/{{cls}}.log",
    params:
        contamination=CLUSTER["contamination"],
        n_neighbors=CLUSTER["lof_n_neighbors"],
        n_init=CLUSTER["n_init"],
    resources:
        **rule_resources("cluster"),
    conda:
        "../envs/cpu.yaml"
    shell:
        "python -m vlcp cluster --latents {input:q} --ipc {wildcards.ipc} --seed {wildcards.seed}"
        " --contamination {params.contamination} --n-neighbors {params.n_neighbors} --n-init {params.n_init}"
        " --out {output.clusters:q} --centres {output.centres:q} > {log:q} 2>&1"

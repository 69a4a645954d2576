# Stage 6: text prototypes, a job per (part, IPC, seed, prompt strategy), in the folder of
# their strategy (PROTOTYPE_DIRS: prototypes/ for the paper's, prototypes-<strategy>/ for the others).


include: "functions/text_prototype.smk"


rule text_prototype:
    input:
        captions=part_folder("captions"),
        clusters=part_folder("clusters/ipc{ipc}/seed{seed}"),
        index=part_folder("index/train"),
        generator=lambda wildcards: (
            model_input("text_generator") if wildcards.prototypes == PROTOTYPE_DIRS["gpt"] else []
        ),
    output:
        prototypes=directory(part_folder("{prototypes}/ipc{ipc}/seed{seed}")),
    log:
        part_log("{prototypes}/ipc{ipc}/seed{seed}"),
    benchmark:
        benchmark("text_prototype", "part", "prototypes", "ipc", "seed")
    wildcard_constraints:
        prototypes=alternatives(STRATEGY_OF_DIR),
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("text_prototype")
    resources:
        **rule_resources("text_prototype", per_class=True),
    params:
        captions=in_part("captions", ".jsonl"),
        clusters=in_part("clusters/ipc{ipc}/seed{seed}", ".json"),
        index=in_part("index/train", ".jsonl"),
        prototypes=in_part("{prototypes}/ipc{ipc}/seed{seed}", ".json"),
        settings=text_prototype_options,
        execution=execution_options("text_prototype"),
    shell:
        "python -m vlcp text_prototype --captions {params.captions:q} --clusters {params.clusters:q}"
        " --index {params.index:q} {params.settings} {params.execution}"
        " --out {params.prototypes:q} > {log:q} 2>&1"

# Stage 6: text prototypes, a job per (class or part, IPC, seed, prompt strategy), in the folder of
# their strategy (PROTOTYPE_DIRS: prototypes/ for the paper's, prototypes-<strategy>/ for the others).


include: "functions/text_prototype.smk"


PROTOTYPE_IN = class_files(
    captions=("captions", ".jsonl"), clusters=("clusters/ipc{ipc}/seed{seed}", ".json"), index=("index/train", ".jsonl")
)


PROTOTYPE_OUT = class_files(prototypes=("{prototypes}/ipc{ipc}/seed{seed}", ".json"))


rule text_prototype:
    input:
        **PROTOTYPE_IN.input,
        generator=lambda wildcards: (
            model_input("text_generator") if wildcards.prototypes == PROTOTYPE_DIRS["gpt"] else []
        ),
    output:
        **PROTOTYPE_OUT.output(),
    log:
        class_log("{prototypes}/ipc{ipc}/seed{seed}"),
    benchmark:
        benchmark("text_prototype", CLASS, "prototypes", "ipc", "seed")
    wildcard_constraints:
        prototypes=alternatives(STRATEGY_OF_DIR),
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("text_prototype")
    resources:
        **rule_resources("text_prototype", per_class=True),
    params:
        **PROTOTYPE_IN.paths,
        **PROTOTYPE_OUT.paths,
        settings=text_prototype_options,
        execution=execution_options("text_prototype"),
        part=part_option,
    shell:
        "python -m vlcp text_prototype --captions {params.captions:q} --clusters {params.clusters:q}"
        " --index {params.index:q} {params.settings} {params.execution}"
        " --out {params.prototypes:q} {params.part} > {log:q} 2>&1"

# Stage 6: text prototypes, a job per (class or part, IPC, seed, prompt strategy).


rule text_prototype:
    input:
        captions=class_file("captions", ".jsonl"),
        clusters=class_file("clusters/ipc{ipc}/seed{seed}", ".json"),
        index=class_file("index/train", ".jsonl"),
        generator=text_generator_input,
    output:
        **class_outputs("{prototypes}/ipc{ipc}/seed{seed}", prototypes=".json"),
    log:
        class_log("{prototypes}/ipc{ipc}/seed{seed}"),
    wildcard_constraints:
        prototypes="prototypes|prototypes-label|prototypes-label\\+keywords|prototypes-gpt",
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("default")
    resources:
        **rule_resources("default", per_class=True),
    params:
        strategy=prototype_strategy,
        settings=text_prototype_options,
        generator=text_generator_option,
        captions=class_paths("captions", ".jsonl"),
        clusters=class_paths("clusters/ipc{ipc}/seed{seed}", ".json"),
        index=class_paths("index/train", ".jsonl"),
        out=class_paths("{prototypes}/ipc{ipc}/seed{seed}", ".json"),
        part=part_option,
    shell:
        "python -m vlcp text_prototype --captions {params.captions:q} --clusters {params.clusters:q}"
        " --index {params.index:q} {params.settings} --strategy {params.strategy:q}"
        " {params.generator}"
        " --out {params.out:q} {params.part} > {log:q} 2>&1"

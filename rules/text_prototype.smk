# Stage 6: text prototypes, a job per (class or part, IPC, seed, prompt strategy), in the folder of
# their strategy (PROTOTYPE_DIRS: prototypes/ for the paper's, prototypes-<strategy>/ for the others).

STRATEGY_OF_DIR = {folder: strategy for strategy, folder in PROTOTYPE_DIRS.items()}


def text_prototype_options(wildcards):
    """The text-prototype settings and strategy; the generator's settings and model only for the gpt
    strategy, so that changing them reruns nothing else."""
    strategy = STRATEGY_OF_DIR[wildcards.prototypes]
    settings = stage_settings(config, "text_prototype")
    if strategy != "gpt":
        settings = {k: v for k, v in settings.items() if not k.startswith("generator_")}
    words = [options(settings), f"--strategy {shlex.quote(strategy)}"]
    if strategy == "gpt":
        words.append(f"--text-generator {shlex.quote(model_path('text_generator'))}")
    return " ".join(words)


rule text_prototype:
    input:
        captions=class_file("captions", ".jsonl"),
        clusters=class_file("clusters/ipc{ipc}/seed{seed}", ".json"),
        index=class_file("index/train", ".jsonl"),
        generator=lambda wildcards: (
            model_input("text_generator") if wildcards.prototypes == PROTOTYPE_DIRS["gpt"] else []
        ),
    output:
        **class_outputs("{prototypes}/ipc{ipc}/seed{seed}", prototypes=".json"),
    log:
        class_log("{prototypes}/ipc{ipc}/seed{seed}"),
    benchmark:
        benchmark("text_prototype", CLASS, "prototypes", "ipc", "seed")
    wildcard_constraints:
        prototypes=alternatives(STRATEGY_OF_DIR),
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("default")
    resources:
        **rule_resources("default", per_class=True),
    params:
        settings=text_prototype_options,
        execution=execution_options("text_prototype"),
        captions=class_paths("captions", ".jsonl"),
        clusters=class_paths("clusters/ipc{ipc}/seed{seed}", ".json"),
        index=class_paths("index/train", ".jsonl"),
        out=class_paths("{prototypes}/ipc{ipc}/seed{seed}", ".json"),
        part=part_option,
    shell:
        "python -m vlcp text_prototype --captions {params.captions:q} --clusters {params.clusters:q}"
        " --index {params.index:q} {params.settings} {params.execution}"
        " --out {params.out:q} {params.part} > {log:q} 2>&1"

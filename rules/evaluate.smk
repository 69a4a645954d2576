# Stage 8: train a classifier on a distilled set and test on the real val split, one job per
# (method, IPC, distillation seed, model, evaluation seed) of each protocol: hard labels as
# MinimaxDiffusion trains them (rule evaluate, vlcp.evaluate) and soft labels from a teacher as RDED
# does (rule soft_label, vlcp.rded), with the teacher the run is given or trains (rule teacher).


include: "functions/evaluate.smk"


rule evaluate:
    input:
        train=lambda wildcards: (
            f"{RESULTS}/index/train.jsonl" if wildcards.method == "full" else wildcard_manifest(wildcards)
        ),
        val=f"{RESULTS}/index/val.jsonl",
    output:
        f"{RESULTS}/eval/minimax/{EVAL_RUN}.csv",
    log:
        f"{LOGS}/eval/minimax/{EVAL_RUN}.log",
    benchmark:
        benchmark("evaluate", "method", "ipc", "seed", "model", "eval_seed")
    wildcard_constraints:
        ipc="[0-9]+|all",
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("evaluate")
    resources:
        **rule_resources("evaluate"),
    params:
        source=evaluate_source,
        root=DATA_ROOT,
        settings=lambda wildcards: options(
            evaluation_settings(config["evaluate"], wildcards.ipc, len(CLASSES), DATASET["eval_size"])
        ),
        execution=execution_options("evaluate"),
    shell:
        "python -m vlcp evaluate {params.source} --val-index {input.val:q} --root {params.root:q}"
        " --model {wildcards.model} --seed {wildcards.eval_seed}"
        " --method {wildcards.method} --ipc {wildcards.ipc} --distill-seed {wildcards.seed}"
        " {params.settings} {params.execution} --out {output:q} > {log:q} 2>&1"


rule soft_label:
    input:
        train=wildcard_manifest,
        val=f"{RESULTS}/index/val.jsonl",
        teacher=TEACHER,
    output:
        f"{RESULTS}/eval/rded/{EVAL_RUN}.csv",
    log:
        f"{LOGS}/eval/rded/{EVAL_RUN}.log",
    benchmark:
        benchmark("soft_label", "method", "ipc", "seed", "model", "eval_seed")
    wildcard_constraints:
        model=alternatives(names.STUDENTS),
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("soft_label")
    resources:
        **rule_resources("soft_label"),
    params:
        root=DATA_ROOT,
        teacher_architecture=TEACHER_ARCHITECTURE,
        settings=lambda wildcards: options(
            soft_label_settings(config["soft_label"], wildcards.ipc, len(CLASSES), DATASET["eval_size"])
        ),
        execution=execution_options("soft_label"),
    shell:
        "python -m vlcp rded --train-manifest {input.train:q} --val-index {input.val:q} --root {params.root:q}"
        " --model {wildcards.model} --seed {wildcards.eval_seed}"
        " --method {wildcards.method} --ipc {wildcards.ipc} --distill-seed {wildcards.seed}"
        " --teacher {input.teacher:q} --teacher-architecture {params.teacher_architecture}"
        " {params.settings} {params.execution} --out {output:q} > {log:q} 2>&1"


# The soft-label protocol's teacher, when evaluate.teacher names no file: trained once per run on the
# real train split with hard labels.
rule teacher:
    input:
        train=f"{RESULTS}/index/train.jsonl",
        val=f"{RESULTS}/index/val.jsonl",
    output:
        f"{RESULTS}/teacher/{{architecture}}.safetensors",
    log:
        f"{LOGS}/teacher/{{architecture}}.log",
    benchmark:
        benchmark("teacher", "architecture")
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("teacher")
    resources:
        **rule_resources("teacher"),
    params:
        root=DATA_ROOT,
        settings=fixed_param(options(teacher_settings(config, len(CLASSES)))),
        execution=execution_options("evaluate"),
    shell:
        "python -m vlcp teacher --train-index {input.train:q} --val-index {input.val:q} --root {params.root:q}"
        " {params.settings} {params.execution} --out {output:q} > {log:q} 2>&1"

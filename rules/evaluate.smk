# Stage 8: train a classifier on a distilled set and test on the real val split, one job per
# (protocol, method, IPC, distillation seed, model, evaluation seed): hard labels (Minimax's protocol,
# vlcp.evaluate) or soft labels from a teacher (RDED's, vlcp.rded).


rule evaluate:
    input:
        train=evaluate_train_input,
        val=f"{RESULTS}/index/val.jsonl",
        teacher=teacher_input,
    output:
        f"{RESULTS}/eval/{{protocol}}/{{method}}/ipc{{ipc}}/seed{{seed}}/{{model}}/eval{{eval_seed}}.csv",
    log:
        f"{LOGS}/eval/{{protocol}}/{{method}}/ipc{{ipc}}/seed{{seed}}/{{model}}/eval{{eval_seed}}.log",
    wildcard_constraints:
        ipc="[0-9]+|all",
        protocol="minimax|rded",
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("evaluate")
    resources:
        **rule_resources("evaluate"),
    params:
        stage=evaluate_stage,
        source=evaluate_source,
        teacher=teacher_options,
        root=DATA_ROOT,
        settings=evaluate_options,
        execution=evaluation_execution,
    shell:
        "python -m vlcp {params.stage} {params.source} --val-index {input.val:q} --root {params.root:q}"
        " --model {wildcards.model} --seed {wildcards.eval_seed}"
        " --method {wildcards.method} --ipc {wildcards.ipc} --distill-seed {wildcards.seed}"
        " {params.teacher} {params.settings} {params.execution} --out {output:q} > {log:q} 2>&1"


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
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("evaluate")
    resources:
        **rule_resources("evaluate"),
    params:
        root=DATA_ROOT,
        settings=teacher_options_of_training(),
        execution=execution_options("evaluate"),
    shell:
        "python -m vlcp teacher --train-index {input.train:q} --val-index {input.val:q} --root {params.root:q}"
        " {params.settings} {params.execution} --out {output:q} > {log:q} 2>&1"

# Stage 8: train a classifier on a distilled set and test on the real val split,
# one job per (method, IPC, distillation seed, model, evaluation seed).


rule evaluate:
    input:
        train=evaluate_train_input,
        val=f"{RESULTS}/index/val.jsonl",
    output:
        f"{RESULTS}/eval/{{method}}/ipc{{ipc}}/seed{{seed}}/{{model}}/eval{{eval_seed}}.csv",
    log:
        f"{LOGS}/eval/{{method}}/ipc{{ipc}}/seed{{seed}}/{{model}}/eval{{eval_seed}}.log",
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
        settings=evaluate_options,
        execution=execution_options("evaluate"),
    shell:
        "python -m vlcp evaluate {params.source} --val-index {input.val:q} --root {params.root:q}"
        " --model {wildcards.model} --seed {wildcards.eval_seed}"
        " --method {wildcards.method} --ipc {wildcards.ipc} --distill-seed {wildcards.seed}"
        " {params.settings} {params.execution} --out {output:q} > {log:q} 2>&1"

# Stage 6: text prototypes, one job per (class, IPC, seed, prompt strategy).


rule text_prototype:
    input:
        captions=f"{RESULTS}/captions/{{cls}}.jsonl",
        clusters=f"{RESULTS}/clusters/ipc{{ipc}}/seed{{seed}}/{{cls}}.json",
        index=f"{RESULTS}/index/train/{{cls}}.jsonl",
    output:
        f"{RESULTS}/{{prototypes}}/ipc{{ipc}}/seed{{seed}}/{{cls}}.json",
    log:
        f"{LOGS}/{{prototypes}}/ipc{{ipc}}/seed{{seed}}/{{cls}}.log",
    wildcard_constraints:
        prototypes="prototypes|prototypes-label|prototypes-label\\+keywords",
    params:
        strategy=prototype_strategy,
        beta=TEXT_PROTOTYPE["beta"],
        top_k=TEXT_PROTOTYPE["top_k"],
    resources:
        **rule_resources("default"),
    conda:
        "../envs/cpu.yaml"
    shell:
        "python -m vlcp text_prototype --captions {input.captions:q} --clusters {input.clusters:q}"
        " --index {input.index:q} --beta {params.beta} --top-k {params.top_k} --strategy {params.strategy:q}"
        " --out {output:q} > {log:q} 2>&1"

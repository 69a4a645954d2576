# Stage 2: one caption per train image, one job per class.


rule caption:
    input:
        index=f"{RESULTS}/index/train/{{cls}}.jsonl",
        model=model_input("captioner"),
    output:
        f"{RESULTS}/captions/{{cls}}.jsonl",
    log:
        f"{LOGS}/caption/{{cls}}.log",
    params:
        root=DATA_ROOT,
        model=model_path("captioner"),
        settings=caption_params(),
        sample=lambda wildcards: "--do-sample" if CAPTION["do_sample"] else "",
        progress=f"{RESULTS}/work/captions/{{cls}}.partial.jsonl",
    resources:
        **rule_resources("caption"),
    conda:
        "../envs/gpu.yaml"
    shell:
        "python -m vlcp caption --index {input.index:q} --root {params.root:q} --model {params.model:q}"
        " --prompt {params.settings[prompt]:q} --batch-size {params.settings[batch_size]}"
        " --max-new-tokens {params.settings[max_new_tokens]} {params.sample}"
        " --temperature {config[caption][temperature]} --seed {config[caption][seed]}"
        " --dtype {params.settings[dtype]} --progress {params.progress:q} --out {output:q} > {log:q} 2>&1"

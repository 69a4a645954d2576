# Stage 2: one caption per train image; a job per part (rules/parts.smk).


include: "functions/caption.smk"


rule caption:
    input:
        index=part_folder("index/train"),
        model=model_input("captioner"),
    output:
        captions=directory(part_folder("captions")),
    log:
        part_log("caption"),
    benchmark:
        benchmark("caption", "part")
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("caption")
    resources:
        **rule_resources("caption", per_class=True),
    params:
        index=in_part("index/train", ".jsonl"),
        captions=in_part("captions", ".jsonl"),
        root=DATA_ROOT,
        model=fixed_param(model_path("captioner")),  # a params value: a new model reruns the job
        variant=model_variant("captioner"),
        settings=caption_options(),
        work=per_class("work/captions"),
    shell:
        "python -m vlcp caption --index {params.index:q} --root {params.root:q} --model {params.model:q} {params.variant}"
        " {params.settings} --work {params.work:q} --out {params.captions:q} > {log:q} 2>&1"

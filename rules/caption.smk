# Stage 2: one caption per train image; a job per class or part.


include: "functions/caption.smk"


CAPTION_IN = class_files(index=("index/train", ".jsonl"))


CAPTION_OUT = class_files(captions=("captions", ".jsonl"))


rule caption:
    input:
        **CAPTION_IN.input,
        model=model_input("captioner"),
    output:
        **CAPTION_OUT.output(),
    log:
        class_log("caption"),
    benchmark:
        benchmark("caption", CLASS)
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("caption")
    resources:
        **rule_resources("caption", per_class=True),
    params:
        **CAPTION_IN.paths,
        **CAPTION_OUT.paths,
        root=DATA_ROOT,
        model=fixed_param(model_path("captioner")),  # a params value: a new model reruns the job
        variant=model_variant("captioner"),
        settings=caption_options(),
        work=class_paths("work/captions"),
        part=part_option,
    shell:
        "python -m vlcp caption --index {params.index:q} --root {params.root:q} --model {params.model:q} {params.variant}"
        " {params.settings} --work {params.work:q} --out {params.captions:q} {params.part} > {log:q} 2>&1"

# Stage 2: one caption per train image; a job per class or part.


def caption_options():
    """The caption settings an output depends on; the sampling settings only when sampling."""
    settings = stage_settings(config, "caption")
    if not settings["do_sample"]:
        settings = {k: v for k, v in settings.items() if k not in ("temperature", "seed")}
    return fixed_param(options(settings))


rule caption:
    input:
        index=class_file("index/train", ".jsonl"),
        model=model_input("captioner"),
    output:
        **class_outputs("captions", captions=".jsonl"),
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
        root=DATA_ROOT,
        model=fixed_param(model_path("captioner")),  # a params value: a new model reruns the job
        variant=model_variant("captioner"),
        settings=caption_options(),
        index=class_paths("index/train", ".jsonl"),
        out=class_paths("captions", ".jsonl"),
        work=class_paths("work/captions"),
        part=part_option,
    shell:
        "python -m vlcp caption --index {params.index:q} --root {params.root:q} --model {params.model:q} {params.variant}"
        " {params.settings} --work {params.work:q} --out {params.out:q} {params.part} > {log:q} 2>&1"

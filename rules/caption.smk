# Stage 2: one caption per train image; a job per class or part.


rule caption:
    input:
        index=class_file("index/train", ".jsonl"),
        model=model_input("captioner"),
    output:
        **class_outputs("captions", captions=".jsonl"),
    log:
        class_log("caption"),
    params:
        root=DATA_ROOT,
        model=model_path("captioner"),
        variant=model_variant("captioner"),
        settings=caption_params(),
        sample="--do-sample" if CAPTION["do_sample"] else "",
        pad=cli_flag("pad", CAPTION["pad_to_square"]),
        index=class_paths("index/train", ".jsonl"),
        out=class_paths("captions", ".jsonl"),
        progress=class_paths("work/captions", ".partial.jsonl"),
        part=part_option,
    threads: rule_threads("caption")
    resources:
        **rule_resources("caption", per_class=True),
    conda:
        "../envs/gpu.yaml"
    shell:
        "python -m vlcp caption --index {params.index:q} --root {params.root:q} --model {params.model:q} {params.variant}"
        " --prompt {params.settings[prompt]:q} --conversation {params.settings[conversation]}"
        " {params.pad} --batch-size {params.settings[batch_size]}"
        " --max-new-tokens {params.settings[max_new_tokens]} {params.sample}"
        " --temperature {config[caption][temperature]} --seed {config[caption][seed]}"
        " --dtype {params.settings[dtype]} --progress {params.progress:q} --out {params.out:q} {params.part}"
        " > {log:q} 2>&1"

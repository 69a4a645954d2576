# Stage 4: VAE latents of the train images, for clustering and (with finetune.from_latents)
# for fine-tuning; a job per class or part. Only the base model's VAE is read, so this does
# not wait for fine-tuning.


rule encode:
    input:
        index=class_file("index/train", ".jsonl"),
        model=model_input("diffusion"),
    output:
        **class_outputs("latents", latents=".safetensors"),
    log:
        class_log("encode"),
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("encode")
    resources:
        **rule_resources("encode", per_class=True),
    params:
        root=DATA_ROOT,
        model=model_param("diffusion"),
        variant=model_variant("diffusion"),
        settings=stage_options("encode"),
        train=encode_train_option(),
        execution=execution_options("encode"),
        index=class_paths("index/train", ".jsonl"),
        out=class_paths("latents", ".safetensors"),
        part=part_option,
    shell:
        "python -m vlcp encode --index {params.index:q} --root {params.root:q} --model {params.model:q} {params.variant}"
        " {params.settings} {params.train} {params.execution} --out {params.out:q} {params.part} > {log:q} 2>&1"

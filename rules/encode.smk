# Stage 4: VAE latents of the train images, for clustering and (with finetune.from_latents)
# for fine-tuning; a job per part (rules/parts.smk). Only the base model's VAE is read, so this does
# not wait for fine-tuning.


include: "functions/encode.smk"


rule encode:
    input:
        index=part_folder("index/train"),
        model=model_input("diffusion"),
    output:
        latents=directory(part_folder("latents")),
    log:
        part_log("encode"),
    benchmark:
        benchmark("encode", "part")
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("encode")
    resources:
        **rule_resources("encode", per_class=True),
    params:
        index=in_part("index/train", ".jsonl"),
        latents=in_part("latents", ".safetensors"),
        root=DATA_ROOT,
        model=fixed_param(model_path("diffusion")),  # a params value: a new model reruns the job
        variant=model_variant("diffusion"),
        settings=stage_options("encode"),
        train=encode_train_option(),
        execution=execution_options("encode"),
    shell:
        "python -m vlcp encode --index {params.index:q} --root {params.root:q} --model {params.model:q} {params.variant}"
        " {params.settings} {params.train} {params.execution} --out {params.latents:q} > {log:q} 2>&1"

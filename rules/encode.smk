# Stage 4: VAE latents of the train images, for clustering and (with finetune.from_latents)
# for fine-tuning; a job per class or part. Only the base model's VAE is read, so this does
# not wait for fine-tuning.


include: "functions/encode.smk"


ENCODE_IN = class_files(index=("index/train", ".jsonl"))


ENCODE_OUT = class_files(latents=("latents", ".safetensors"))


rule encode:
    input:
        **ENCODE_IN.input,
        model=model_input("diffusion"),
    output:
        **ENCODE_OUT.output(),
    log:
        class_log("encode"),
    benchmark:
        benchmark("encode", CLASS)
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("encode")
    resources:
        **rule_resources("encode", per_class=True),
    params:
        **ENCODE_IN.paths,
        **ENCODE_OUT.paths,
        root=DATA_ROOT,
        model=fixed_param(model_path("diffusion")),  # a params value: a new model reruns the job
        variant=model_variant("diffusion"),
        settings=stage_options("encode"),
        train=encode_train_option(),
        execution=execution_options("encode"),
        part=part_option,
    shell:
        "python -m vlcp encode --index {params.index:q} --root {params.root:q} --model {params.model:q} {params.variant}"
        " {params.settings} {params.train} {params.execution} --out {params.latents:q} {params.part} > {log:q} 2>&1"

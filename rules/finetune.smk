# Stage 3: fine-tune the U-Net on the captioned train images; one job per
# distillation seed, or one shared by all (finetune.per_seed). A job with more
# than one GPU launches one process per GPU through accelerate.


include: "functions/finetune.smk"


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        directory(f"{RESULTS}/finetune/{{ft}}"),
    log:
        f"{LOGS}/finetune/{{ft}}.log",
    benchmark:
        benchmark("finetune", "ft")
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("finetune")
    resources:
        **rule_resources("finetune"),
    params:
        model=model_path("diffusion"),
        variant=model_variant("diffusion"),
        root=DATA_ROOT,
        seed=finetune_seed,
        settings=stage_options("finetune"),
        execution=execution_options("finetune"),
        launch=launcher,
        work=lambda wildcards: f"{RESULTS}/work/finetune/{wildcards.ft}",
        index=every_class("index/train", ".jsonl"),
        captions=every_class("captions", ".jsonl"),
        latents=every_class("latents", ".safetensors") if FROM_LATENTS else [],
    shell:
        "{params.launch} vlcp finetune --model {params.model:q} {params.variant} --index {params.index:q}"
        " --captions {params.captions:q} --latents {params.latents:q}"
        " --root {params.root:q} --out {output:q} --work {params.work:q} --seed {params.seed}"
        " {params.settings} {params.execution} > {log:q} 2>&1"

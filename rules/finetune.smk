# Stage 3: fine-tune the U-Net on the captioned train images; one job per
# distillation seed, or one shared by all (finetune.per_seed). A job with more
# than one GPU launches one process per GPU through accelerate.


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        directory(f"{RESULTS}/finetune/{{ft}}"),
    log:
        f"{LOGS}/finetune/{{ft}}.log",
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
        work=lambda wildcards: f"{RESULTS}/work/finetune/{wildcards.ft}",
        files=finetune_files(),
    shell:
        "if [ {resources.gpu} -gt 1 ]; then"
        " launch='accelerate launch --multi_gpu --num_processes {resources.gpu} --num_machines 1 -m';"
        " else launch='python -m'; fi;"
        " $launch vlcp finetune --model {params.model:q} {params.variant} --index {params.files[index]:q}"
        " --captions {params.files[captions]:q} --latents {params.files[latents]:q}"
        " --root {params.root:q} --out {output:q} --work {params.work:q} --seed {params.seed}"
        " {params.settings} {params.execution} > {log:q} 2>&1"

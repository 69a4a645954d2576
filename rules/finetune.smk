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
    params:
        model=model_path("diffusion"),
        variant=model_variant("diffusion"),
        root=DATA_ROOT,
        seed=finetune_seed,
        settings=finetune_params(),
        flags=" ".join(
            cli_flag(name.replace("_", "-"), FINETUNE[name])
            for name in ("center_crop", "random_flip", "use_ema", "gradient_checkpointing", "scale_lr")
        ),
        max_steps=f"--max-train-steps {FINETUNE['max_train_steps']}" if FINETUNE["max_train_steps"] else "",
        work=lambda wildcards: f"{RESULTS}/work/finetune/{wildcards.ft}",
        files=finetune_files(),
    threads: rule_threads("finetune")
    resources:
        **rule_resources("finetune"),
    conda:
        "../envs/gpu.yaml"
    shell:
        "if [ {resources.gpu} -gt 1 ]; then"
        " launch='accelerate launch --multi_gpu --num_processes {resources.gpu} --num_machines 1 -m';"
        " else launch='python -m'; fi;"
        " $launch vlcp finetune --model {params.model:q} {params.variant} --index {params.files[index]:q}"
        " --captions {params.files[captions]:q} --latents {params.files[latents]:q}"
        " --root {params.root:q} --out {output:q} --work {params.work:q} --seed {params.seed}"
        " --resolution {params.settings[resolution]} {params.flags}"
        " --train-batch-size {params.settings[train_batch_size]}"
        " --gradient-accumulation-steps {params.settings[gradient_accumulation_steps]}"
        " --learning-rate {params.settings[learning_rate]} --lr-scheduler {params.settings[lr_scheduler]}"
        " --lr-warmup-steps {params.settings[lr_warmup_steps]}"
        " --adam-beta1 {params.settings[adam_beta1]} --adam-beta2 {params.settings[adam_beta2]}"
        " --adam-weight-decay {params.settings[adam_weight_decay]} --adam-epsilon {params.settings[adam_epsilon]}"
        " --max-grad-norm {params.settings[max_grad_norm]} --mixed-precision {params.settings[mixed_precision]}"
        " --num-train-epochs {params.settings[num_train_epochs]} {params.max_steps}"
        " --checkpointing-steps {config[finetune][checkpointing_steps]}"
        " --checkpoints-total-limit {config[finetune][checkpoints_total_limit]}"
        " --num-workers {config[finetune][dataloader_num_workers]} > {log:q} 2>&1"

# Stage 4: VAE latents of the train images, one job per class. Only the base
# model's VAE is read, so this does not wait for fine-tuning.


rule encode:
    input:
        index=f"{RESULTS}/index/train/{{cls}}.jsonl",
        model=model_input("diffusion"),
    output:
        f"{RESULTS}/latents/{{cls}}.safetensors",
    log:
        f"{LOGS}/encode/{{cls}}.log",
    params:
        root=DATA_ROOT,
        model=model_path("diffusion"),
        resolution=FINETUNE["resolution"],
        dtype=ENCODE["dtype"],
        flip="--flip" if encode_flips() else "",
    resources:
        **rule_resources("encode"),
    conda:
        "../envs/gpu.yaml"
    shell:
        "python -m vlcp encode --index {input.index:q} --root {params.root:q} --model {params.model:q}"
        " --resolution {params.resolution} --dtype {params.dtype} {params.flip}"
        " --batch-size {config[encode][batch_size]} --out {output:q} > {log:q} 2>&1"

# Stage 7: the distilled images, one job per (class, IPC, seed, prompt strategy),
# written as an ImageFolder distilled/vlcp-<strategy>/ipc<N>/seed<S>/<class>/<k>.png.


rule synthesize:
    input:
        model=finetune_for_seed,
        clusters=f"{RESULTS}/clusters/ipc{{ipc}}/seed{{seed}}/{{cls}}.json",
        centres=f"{RESULTS}/clusters/ipc{{ipc}}/seed{{seed}}/{{cls}}.safetensors",
        prototypes=prototype_file,
    output:
        directory(f"{RESULTS}/distilled/vlcp-{{strategy}}/ipc{{ipc}}/seed{{seed}}/{{cls}}"),
    log:
        f"{LOGS}/synthesize/vlcp-{{strategy}}/ipc{{ipc}}/seed{{seed}}/{{cls}}.log",
    params:
        settings={k: v for k, v in SYNTHESIZE.items() if k != "batch_size"},
        size=DATASET["eval_size"],
        work=lambda wildcards: f"{RESULTS}/work/synthesize/vlcp-{wildcards.strategy}/ipc{wildcards.ipc}/seed{wildcards.seed}/{wildcards.cls}",
    resources:
        **rule_resources("synthesize"),
    conda:
        "../envs/gpu.yaml"
    shell:
        "python -m vlcp synthesize --model {input.model:q} --clusters {input.clusters:q}"
        " --prototypes {input.prototypes:q} --class {wildcards.cls:q} --seed {wildcards.seed}"
        " --strength {params.settings[strength]} --guidance-scale {params.settings[guidance_scale]}"
        " --steps {params.settings[num_inference_steps]} --negative-prompt {params.settings[negative_prompt]:q}"
        " --scheduler {params.settings[scheduler]:q} --long-prompts {params.settings[long_prompts]}"
        " --dtype {params.settings[dtype]} --batch-size {config[synthesize][batch_size]}"
        " --size {params.size} --work {params.work:q} --out {output:q} > {log:q} 2>&1"

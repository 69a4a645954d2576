# Stage 7: the distilled images, a job per (class or part, IPC, seed, prompt strategy),
# written as an ImageFolder distilled/vlcp-<strategy>/ipc<N>/seed<S>/<class>/<k>.png.


include: "functions/synthesize.smk"


SYNTHESIZE_IN = class_files(
    clusters=("clusters/ipc{ipc}/seed{seed}", ".json"), centres=("clusters/ipc{ipc}/seed{seed}", ".safetensors")
)


SYNTHESIZE_OUT = class_files(out=("distilled/vlcp-{strategy}/ipc{ipc}/seed{seed}", ""))


rule synthesize:
    input:
        **SYNTHESIZE_IN.input,
        model=finetuned_model,
        prototypes=prototype_input,
    output:
        **SYNTHESIZE_OUT.output(directory),
    log:
        class_log("synthesize/vlcp-{strategy}/ipc{ipc}/seed{seed}"),
    benchmark:
        benchmark("synthesize", CLASS, "strategy", "ipc", "seed")
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("synthesize")
    resources:
        **rule_resources("synthesize", per_class=True),
    params:
        **SYNTHESIZE_IN.paths,
        **SYNTHESIZE_OUT.paths,
        settings=stage_options("synthesize"),
        execution=execution_options("synthesize"),
        size=DATASET["eval_size"],
        classes=job_classes,
        prototypes=prototype_paths,
        work=class_paths("work/synthesize/vlcp-{strategy}/ipc{ipc}/seed{seed}"),
        part=part_option,
    shell:
        "python -m vlcp synthesize --model {input.model:q} --clusters {params.clusters:q} --centres {params.centres:q}"
        " --prototypes {params.prototypes:q} --class {params.classes:q} --seed {wildcards.seed}"
        " {params.settings} {params.execution} --size {params.size} --work {params.work:q} --out {params.out:q}"
        " {params.part} > {log:q} 2>&1"

# Stage 7: the distilled images, a job per (class or part, IPC, seed, prompt strategy, candidates),
# written as an ImageFolder distilled/vlcp-<strategy>[-k<K>]/ipc<N>/seed<S>/<class>/<k>.png.


include: "functions/synthesize.smk"


SYNTHESIZE_IN = class_files(
    clusters=("clusters/ipc{ipc}/seed{seed}", ".json"), centres=("clusters/ipc{ipc}/seed{seed}", ".safetensors")
)


SYNTHESIZE_OUT = class_files(out=(f"distilled/{VLCP_SET}/ipc{{ipc}}/seed{{seed}}", ""))


rule synthesize:
    input:
        **SYNTHESIZE_IN.input,
        model=finetuned_model,
        prototypes=prototype_input,
        teacher=lambda wildcards: [TEACHER] if candidates(wildcards) > 1 else [],
    output:
        **SYNTHESIZE_OUT.output(directory),
    log:
        class_log(f"synthesize/{VLCP_SET}/ipc{{ipc}}/seed{{seed}}"),
    benchmark:
        benchmark("synthesize", CLASS, "strategy", "candidates", "ipc", "seed")
    wildcard_constraints:
        candidates=f"(?:{CANDIDATES})?",
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("synthesize")
    resources:
        **rule_resources("synthesize", per_class=True, times=candidates),
    params:
        **SYNTHESIZE_IN.paths,
        **SYNTHESIZE_OUT.paths,
        model=finetuned_model,
        variant="",  # the fine-tuned pipeline is saved in plain float32 files
        settings=stage_options("synthesize"),
        execution=execution_options("synthesize"),
        size=DATASET["eval_size"],
        classes=job_classes,
        prototypes=prototype_paths,
        work=class_paths(f"work/synthesize/{VLCP_SET}/ipc{{ipc}}/seed{{seed}}"),
        choice=candidate_options,
        part=part_option,
    shell:
        "python -m vlcp synthesize --model {params.model:q} {params.variant} --clusters {params.clusters:q} --centres {params.centres:q}"
        " --prototypes {params.prototypes:q} --class {params.classes:q} --seed {wildcards.seed}"
        " {params.settings} {params.execution} --size {params.size} --work {params.work:q} --out {params.out:q}"
        " {params.choice} {params.part} > {log:q} 2>&1"

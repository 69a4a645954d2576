# Stage 7: the distilled images, a job per (part, IPC, seed, prompt strategy, candidates),
# written as an ImageFolder distilled/vlcp-<strategy>[-k<K>]/ipc<N>/seed<S>/<class>/<k>.png.


include: "functions/synthesize.smk"


rule synthesize:
    input:
        clusters=part_folder("clusters/ipc{ipc}/seed{seed}"),
        model=finetuned_model,
        prototypes=prototype_input,
        teacher=lambda wildcards: [TEACHER] if candidates(wildcards) > 1 else [],
    output:
        out=directory(part_folder(f"distilled/{VLCP_SET}/ipc{{ipc}}/seed{{seed}}")),
    log:
        part_log(f"synthesize/{VLCP_SET}/ipc{{ipc}}/seed{{seed}}"),
    benchmark:
        benchmark("synthesize", "part", "strategy", "candidates", "ipc", "seed")
    wildcard_constraints:
        candidates=f"(?:{CANDIDATES})?",
    conda:
        "../envs/gpu.yaml"
    threads: rule_threads("synthesize")
    resources:
        **rule_resources("synthesize", per_class=True, times=candidates),
    params:
        clusters=in_part("clusters/ipc{ipc}/seed{seed}", ".json"),
        centres=in_part("clusters/ipc{ipc}/seed{seed}", ".safetensors"),
        out=in_part(f"distilled/{VLCP_SET}/ipc{{ipc}}/seed{{seed}}"),
        model=finetuned_model,
        variant="",  # the fine-tuned pipeline is saved in plain float32 files
        settings=stage_options("synthesize"),
        execution=execution_options("synthesize"),
        size=DATASET["eval_size"],
        classes=part_classes,
        prototypes=prototype_paths,
        work=per_class(f"work/synthesize/{VLCP_SET}/ipc{{ipc}}/seed{{seed}}"),
        choice=candidate_options,
    shell:
        "python -m vlcp synthesize --model {params.model:q} {params.variant} --clusters {params.clusters:q} --centres {params.centres:q}"
        " --prototypes {params.prototypes:q} --class {params.classes:q} --seed {wildcards.seed}"
        " {params.settings} {params.execution} --size {params.size} --work {params.work:q} --out {params.out:q}"
        " {params.choice} > {log:q} 2>&1"

# The method d4m (D4M, CVPR 2024), as its own code makes it: stage 4's latents clustered by mini-batch
# k-means with the label text as each prototype's prompt (a job per class or part, IPC and seed), then
# stage 7 with the base diffusion model, no fine-tune, and D4M's pipeline settings (config section
# d4m.synthesize).


include: "functions/d4m.smk"


D4M_IN = class_files(latents=("latents", ".safetensors"), index=("index/train", ".jsonl"))


D4M_OUT = class_files(
    clusters=("d4m/clusters/ipc{ipc}/seed{seed}", ".json"),
    centres=("d4m/clusters/ipc{ipc}/seed{seed}", ".safetensors"),
    prototypes=("d4m/prompts/ipc{ipc}/seed{seed}", ".json"),
)


rule d4m_prototype:
    input:
        **D4M_IN.input,
    output:
        **D4M_OUT.output(),
    log:
        class_log("d4m/ipc{ipc}/seed{seed}"),
    benchmark:
        benchmark("d4m_prototype", CLASS, "ipc", "seed")
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("d4m_prototype")
    resources:
        **rule_resources("d4m_prototype", per_class=True),
    params:
        **D4M_IN.paths,
        **D4M_OUT.paths,
        settings=stage_options("d4m"),
        part=part_option,
    shell:
        "python -m vlcp d4m --latents {params.latents:q} --index {params.index:q} --ipc {wildcards.ipc}"
        " --seed {wildcards.seed} {params.settings} --clusters {params.clusters:q} --centres {params.centres:q}"
        " --prototypes {params.prototypes:q} {params.part} > {log:q} 2>&1"


D4M_SYNTHESIZE_OUT = class_files(out=(f"distilled/{names.D4M}/ipc{{ipc}}/seed{{seed}}", ""))


# Stage 7 as rule synthesize runs it, on D4M's prototypes and prompts, with the base model and section
# d4m.synthesize's settings; the params not named here (execution, size, classes, choice, part) are
# synthesize's.
use rule synthesize as d4m_synthesize with:
    input:
        **D4M_OUT.made,
        model=model_input("diffusion"),
    output:
        **D4M_SYNTHESIZE_OUT.output(directory),
    log:
        class_log(f"synthesize/{names.D4M}/ipc{{ipc}}/seed{{seed}}"),
    benchmark:
        benchmark("d4m_synthesize", CLASS, "ipc", "seed")
    params:
        **D4M_OUT.paths,
        **D4M_SYNTHESIZE_OUT.paths,
        model=fixed_param(model_path("diffusion")),
        variant=model_variant("diffusion"),
        settings=fixed_param(options(d4m_synthesis_settings())),
        work=class_paths(f"work/synthesize/{names.D4M}/ipc{{ipc}}/seed{{seed}}"),

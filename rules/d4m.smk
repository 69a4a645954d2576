# The method d4m (D4M, CVPR 2024), as its own code makes it: stage 4's latents clustered by mini-batch
# k-means with the label text as each prototype's prompt (a job per part, IPC and seed), then
# stage 7 with the base diffusion model, no fine-tune, and D4M's pipeline settings (config section
# d4m.synthesize).


include: "functions/d4m.smk"


D4M_CLUSTERS = "d4m/clusters/ipc{ipc}/seed{seed}"
D4M_PROMPTS = "d4m/prompts/ipc{ipc}/seed{seed}"


rule d4m_prototype:
    input:
        latents=part_folder("latents"),
        index=part_folder("index/train"),
    output:
        clusters=directory(part_folder(D4M_CLUSTERS)),
        prototypes=directory(part_folder(D4M_PROMPTS)),
    log:
        part_log("d4m/ipc{ipc}/seed{seed}"),
    benchmark:
        benchmark("d4m_prototype", "part", "ipc", "seed")
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("d4m_prototype")
    resources:
        **rule_resources("d4m_prototype", per_class=True),
    params:
        latents=in_part("latents", ".safetensors"),
        index=in_part("index/train", ".jsonl"),
        clusters=in_part(D4M_CLUSTERS, ".json"),
        centres=in_part(D4M_CLUSTERS, ".safetensors"),
        prototypes=in_part(D4M_PROMPTS, ".json"),
        settings=stage_options("d4m"),
    shell:
        "python -m vlcp d4m --latents {params.latents:q} --index {params.index:q} --ipc {wildcards.ipc}"
        " --seed {wildcards.seed} {params.settings} --clusters {params.clusters:q} --centres {params.centres:q}"
        " --prototypes {params.prototypes:q} > {log:q} 2>&1"


# Stage 7 as rule synthesize runs it, on D4M's prototypes and prompts, with the base model and section
# d4m.synthesize's settings; the params not named here (execution, size, classes, choice) are
# synthesize's.
use rule synthesize as d4m_synthesize with:
    input:
        clusters=part_folder(D4M_CLUSTERS),
        prototypes=part_folder(D4M_PROMPTS),
        model=model_input("diffusion"),
    output:
        out=directory(part_folder(f"distilled/{names.D4M}/ipc{{ipc}}/seed{{seed}}")),
    log:
        part_log(f"synthesize/{names.D4M}/ipc{{ipc}}/seed{{seed}}"),
    benchmark:
        benchmark("d4m_synthesize", "part", "ipc", "seed")
    params:
        clusters=in_part(D4M_CLUSTERS, ".json"),
        centres=in_part(D4M_CLUSTERS, ".safetensors"),
        prototypes=in_part(D4M_PROMPTS, ".json"),
        out=in_part(f"distilled/{names.D4M}/ipc{{ipc}}/seed{{seed}}"),
        model=fixed_param(model_path("diffusion")),
        variant=model_variant("diffusion"),
        settings=fixed_param(options(d4m_synthesis_settings())),
        work=per_class(f"work/synthesize/{names.D4M}/ipc{{ipc}}/seed{{seed}}"),

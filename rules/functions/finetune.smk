# Helpers of rules/finetune.smk.

FROM_LATENTS = config["finetune"]["from_latents"]


def finetune_seed(wildcards):
    return int(wildcards.ft[len("seed") :]) if wildcards.ft.startswith("seed") else config["seeds"][0]


def finetune_inputs(wildcards):
    return {
        "index": every_part("index/train"),
        "captions": every_part("captions"),
        "latents": every_part("latents") if FROM_LATENTS else [],
        "data": [] if FROM_LATENTS else [DATA_ROOT],
        "model": model_input("diffusion"),
    }


def launcher(wildcards, resources):
    """How the job starts Python (vlcp.launch.launcher, which imports no torch): one process, or one per GPU
    through accelerate on a free port (a function of the resources, so Snakemake does not compare it to
    decide reruns)."""
    from vlcp.launch import launcher as finetune_launcher

    return finetune_launcher(resources.gpu)

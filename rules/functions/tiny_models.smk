# Helpers of rules/tiny_models.smk.

TINY_WEIGHTS_DIR = f"{TINY_MODEL_DIR}/tiny-sd-weights"


def tiny_weights(wildcards):
    """The pretrained weights the tiny model of this kind carries: for the tiny Stable Diffusion's VAE and
    U-Net, the shipped digit weights (models.tiny_pretrained true) or those the tiny_pretrain rule makes
    from this run's train images ('train'); else none."""
    pretrained = config["models"]["tiny_pretrained"]
    if wildcards.kind != "stable-diffusion" or pretrained is False:
        return []
    if pretrained == "train":
        return [TINY_WEIGHTS_DIR]
    folder = Path(workflow.basedir) / "vlcp" / "data" / "tiny_sd_digits"
    return [str(folder / f"{name}.safetensors") for name in ("vae", "unet")]


def tiny_weights_option(wildcards):
    """The tiny_models option that puts ``tiny_weights`` into the model."""
    if not tiny_weights(wildcards):
        return ""
    return (
        f"--weights {shlex.quote(TINY_WEIGHTS_DIR)}"
        if config["models"]["tiny_pretrained"] == "train"
        else "--pretrained"
    )

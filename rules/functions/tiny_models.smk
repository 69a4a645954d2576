# Helpers of rules/tiny_models.smk.


def tiny_weights(wildcards):
    """The shipped weights the tiny model of this kind carries: the digit VAE and U-Net for the tiny
    Stable Diffusion when models.tiny_pretrained is set, else none."""
    if wildcards.kind != "stable-diffusion" or not config["models"]["tiny_pretrained"]:
        return []
    folder = Path(workflow.basedir) / "vlcp" / "data" / "tiny_sd_digits"
    return [str(folder / f"{name}.safetensors") for name in ("vae", "unet")]

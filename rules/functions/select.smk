# Helpers of rules/select.smk.


def selection_latents(wildcards):
    """The latents a baseline selection reads, its part's: none for random."""
    if wildcards.baseline == "random":
        return []
    return part_folder("latents").format(**dict(wildcards.items()))


def selection_latent_option(wildcards):
    if wildcards.baseline == "random":
        return ""
    paths = " ".join(map(shlex.quote, in_part("latents", ".safetensors")(wildcards)))
    return f"--latents {paths}"

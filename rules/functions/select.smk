# Helpers of rules/select.smk.


def selection_latents(wildcards):
    """The latents a baseline selection reads (file or part record): none for random."""
    if wildcards.baseline == "random":
        return []
    return class_file("latents", ".safetensors").format(**dict(wildcards.items()))


def selection_latent_option(wildcards):
    if wildcards.baseline == "random":
        return ""
    paths = " ".join(map(shlex.quote, class_paths("latents", ".safetensors")(wildcards)))
    return f"--latents {paths}"

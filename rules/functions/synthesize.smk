# Helpers of rules/synthesize.smk.


def finetuned_model(wildcards):
    """The fine-tuned model of the job's distillation seed, or the one all seeds share."""
    name = f"seed{wildcards.seed}" if config["finetune"]["per_seed"] else "shared"
    return f"{RESULTS}/finetune/{name}"


def prototype_folder(wildcards):
    return f"{PROTOTYPE_DIRS[wildcards.strategy]}/ipc{wildcards.ipc}/seed{wildcards.seed}"


def prototype_input(wildcards):
    """The text prototypes a synthesis job reads, of its prompt strategy (file or part record)."""
    return class_file(prototype_folder(wildcards), ".json").format(**dict(wildcards.items()))


def prototype_paths(wildcards):
    return class_paths(prototype_folder(wildcards), ".json")(wildcards)

# Helpers of rules/text_prototype.smk.

STRATEGY_OF_DIR = {folder: strategy for strategy, folder in PROTOTYPE_DIRS.items()}


def text_prototype_options(wildcards):
    """The text-prototype settings and strategy; the generator's settings and model only for the gpt
    strategy, so that changing them reruns nothing else."""
    strategy = STRATEGY_OF_DIR[wildcards.prototypes]
    settings = stage_settings(config, "text_prototype")
    if strategy != "gpt":
        settings = {k: v for k, v in settings.items() if not k.startswith("generator_")}
    words = [options(settings), f"--strategy {shlex.quote(strategy)}"]
    if strategy == "gpt":
        words.append(f"--text-generator {shlex.quote(model_path('text_generator'))}")
    return " ".join(words)

# Helpers of rules/evaluate.smk.

from vlcp.config import evaluation_settings, soft_label_settings, teacher_settings

EVAL_RUN = "{method}/ipc{ipc}/seed{seed}/{model}/eval{eval_seed}"


def evaluate_source(wildcards, input):
    """The training set of vlcp.evaluate: a distilled set's manifest, or the train index for 'full'."""
    option = "--train-index" if wildcards.method == "full" else "--train-manifest"
    return f"{option} {shlex.quote(input.train)}"

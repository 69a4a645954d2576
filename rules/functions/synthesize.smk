# Helpers of rules/synthesize.smk.

from vlcp.config import input_size

# A VLCP set's folder name: its prompt strategy, and -k<K> when it keeps the best of K candidates.
VLCP_SET = "vlcp-{strategy}{candidates}"


def candidates(wildcards):
    """K of a VLCP set's -k<K> suffix: the candidates made per prototype (1 without the suffix)."""
    return names.candidate_count(wildcards.get("candidates", ""))


def candidate_options(wildcards):
    """With K > 1 candidates: K, the teacher that scores them (the soft-label protocol's, at its input
    side), each class's label index, and where execution.synthesize.keep_candidates keeps them."""
    k = candidates(wildcards)
    if k == 1:
        return ""
    labels = " ".join(str(CLASSES.index(c)) for c in part_classes(wildcards))
    kept = per_class(f"candidates/{VLCP_SET}/ipc{{ipc}}/seed{{seed}}")(wildcards)
    return (
        f"--candidates {k} --teacher {shlex.quote(TEACHER)} --teacher-architecture {TEACHER_ARCHITECTURE}"
        f" --teacher-input-size {input_size(config['soft_label'], DATASET['eval_size'])}"
        f" --num-classes {len(CLASSES)} --label {labels} --candidates-dir {' '.join(map(shlex.quote, kept))}"
    )


def finetuned_model(wildcards):
    """The fine-tuned model of the job's distillation seed, or the one all seeds share."""
    name = f"seed{wildcards.seed}" if config["finetune"]["per_seed"] else "shared"
    return f"{RESULTS}/finetune/{name}"


def prototype_folder(wildcards):
    return f"{PROTOTYPE_DIRS[wildcards.strategy]}/ipc{wildcards.ipc}/seed{wildcards.seed}"


def prototype_input(wildcards):
    """The text prototypes a synthesis job reads: its part's, of its prompt strategy."""
    return part_folder(prototype_folder(wildcards)).format(**dict(wildcards.items()))


def prototype_paths(wildcards):
    return in_part(prototype_folder(wildcards), ".json")(wildcards)

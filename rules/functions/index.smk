# Helpers of rules/index.smk.

from pathlib import PurePath


def class_folders(wildcards):
    """The folders an index job reads; for the demo, the whole written demo set."""
    if DEMO:
        return [DATA_ROOT]
    return [f"{DATA_ROOT}/{wildcards.split}/{cls}" for cls in part_classes(wildcards)]


def label_table_input(wildcards):
    """The label TSV when dataset.label_table is a file (its edits rerun the index)."""
    table = DATASET["label_table"]
    if table in ("imagenet", "folder") or (DEMO and PurePath(table).is_relative_to(DATA_ROOT)):
        return []
    return [table]


def label_overrides(wildcards):
    """Per class of the job, quoted for the shell: the label text of config dataset.labels, or '' for the table's."""
    return " ".join(shlex.quote(DATASET["labels"].get(cls, "")) for cls in part_classes(wildcards))

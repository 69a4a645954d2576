# The only place that reads `config`: paths, wildcard values and input functions
# for every stage. Rules take what they need from the names defined here.

import shlex

from vlcp import demo_data
from vlcp.config import ConfigError, check_config
from vlcp.index import DatasetError, SPLITS, find_classes

try:
    check_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

RESULTS = f"{config['results_dir']}/{config['run']}"
LOGS = f"{RESULTS}/logs"
DATASET = config["dataset"]
DATA_ROOT = DATASET["root"]
DEMO = DATASET["source"] == "demo"


def configured_classes():
    """Class folders of this run, in label-index order; checked on disk before any job starts."""
    if DEMO:
        unknown = sorted(set(DATASET["classes"]) - set(demo_data.CLASSES))
        if unknown:
            raise WorkflowError(
                f"Invalid config: dataset.classes lists {unknown}, which the demo set does not have; "
                f"its classes are {', '.join(demo_data.CLASSES)}."
            )
        return list(DATASET["classes"]) or list(demo_data.CLASSES)
    try:
        return find_classes(DATA_ROOT, DATASET["classes"])
    except DatasetError as err:
        raise WorkflowError(f"Dataset error (dataset.root = {DATA_ROOT!r}): {err}") from None


CLASSES = configured_classes()


wildcard_constraints:
    split="|".join(SPLITS),
    cls="[^/]+",


# --- stage 1: index ---------------------------------------------------------


def class_folder(wildcards):
    """The folder a class's index reads; for the demo, the whole written demo set."""
    return DATA_ROOT if DEMO else f"{DATA_ROOT}/{wildcards.split}/{wildcards.cls}"


def label_table_input(wildcards):
    """The label TSV when dataset.label_table is a file (its edits rerun the index)."""
    table = DATASET["label_table"]
    if table in ("imagenet", "folder") or (DEMO and table.startswith(DATA_ROOT.rstrip("/") + "/")):
        return []
    return [table]


def label_override(wildcards):
    return DATASET["labels"].get(wildcards.cls, "")


def index_files(split, kind="jsonl"):
    return expand(f"{RESULTS}/index/{split}/{{cls}}.{kind}", cls=CLASSES)


# --- models -----------------------------------------------------------------

TINY_MODEL_DIR = f"{RESULTS}/models"


def model_path(role):
    """Where a stage loads a model from: a hub id, a local folder, or the tiny model this run builds."""
    name = config["models"][role]
    kind = {"diffusion": "stable-diffusion", "captioner": "llava"}[role]
    return f"{TINY_MODEL_DIR}/tiny-{kind}" if name == "tiny" else name


def model_input(role):
    """The model folder as a rule input when this run builds it, else nothing to wait for."""
    return [model_path(role)] if config["models"][role] == "tiny" else []


# --- targets ----------------------------------------------------------------


def all_targets():
    return [
        f"{RESULTS}/index/classes.tsv",
        f"{RESULTS}/index/rejected.tsv",
        *model_input("diffusion"),
        *model_input("captioner"),
    ]

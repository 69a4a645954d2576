# The only place that reads `config`: paths, wildcard values and input functions
# for every stage. Rules take what they need from the names defined here.

import shlex

from vlcp import demo_data
from vlcp.config import ConfigError, check_config, epochs_for_ipc
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
    """Class folders of this run, in label-index order (sorted unless dataset.classes lists them);
    checked on disk before any job starts."""
    if DEMO:
        unknown = sorted(set(DATASET["classes"]) - set(demo_data.CLASSES))
        if unknown:
            raise WorkflowError(
                f"Invalid config: dataset.classes lists {unknown}, which the demo set does not have; "
                f"its classes are {', '.join(demo_data.CLASSES)}."
            )
        return list(DATASET["classes"]) or sorted(demo_data.CLASSES)
    try:
        return find_classes(DATA_ROOT, DATASET["classes"])
    except DatasetError as err:
        raise WorkflowError(f"Dataset error (dataset.root = {DATA_ROOT!r}): {err}") from None


CLASSES = configured_classes()


wildcard_constraints:
    split="|".join(SPLITS),
    cls="[^/]+",
    ft="seed[0-9]+|shared",
    ipc="[0-9]+",
    seed="[0-9]+",
    strategy="prototype|label|label\+keywords",
    method="vlcp-[a-z+]+|random|herding|kcenter|full",
    baseline="random|herding|kcenter",
    model="convnet6|resnetap10|resnet18",


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
        f"{RESULTS}/accuracy.csv",
        f"{RESULTS}/summary.md",
        *report_grids(),
    ]


# --- stages 2-4: captions, fine-tuning, latents -----------------------------

CAPTION = config["caption"]
FINETUNE = config["finetune"]
ENCODE = config["encode"]


def caption_params():
    """The caption settings an output depends on; sampling settings only when sampling."""
    sampling = {"temperature": CAPTION["temperature"], "seed": CAPTION["seed"]} if CAPTION["do_sample"] else {}
    keys = ("prompt", "batch_size", "max_new_tokens", "do_sample", "dtype")
    return {**{k: CAPTION[k] for k in keys}, **sampling}


def caption_files():
    return expand(f"{RESULTS}/captions/{{cls}}.jsonl", cls=CLASSES)


def latent_files():
    return expand(f"{RESULTS}/latents/{{cls}}.safetensors", cls=CLASSES)


def encode_flips():
    """Mirrored latents are needed when fine-tuning flips images and trains from the cache."""
    return FINETUNE["from_latents"] and FINETUNE["random_flip"]


def finetune_name(seed):
    return f"seed{seed}" if FINETUNE["per_seed"] else "shared"


def finetune_seed(wildcards):
    return int(wildcards.ft[len("seed") :]) if wildcards.ft.startswith("seed") else config["seeds"][0]


def finetune_params():
    """Every fine-tune setting that changes the trained weights."""
    skip = ("checkpointing_steps", "checkpoints_total_limit", "dataloader_num_workers", "per_seed")
    return {k: v for k, v in FINETUNE.items() if k not in skip}


def finetune_inputs(wildcards):
    return {
        "index": index_files("train"),
        "captions": caption_files(),
        "latents": latent_files() if FINETUNE["from_latents"] else [],
        "data": [] if FINETUNE["from_latents"] else [DATA_ROOT],
        "model": model_input("diffusion"),
    }


def cli_flag(name, value):
    """A boolean setting as the matching --name / --no-name flag."""
    return f"--{name}" if value else f"--no-{name}"


# --- stages 5-7: image prototypes, text prototypes, synthesis ---------------

CLUSTER = config["cluster"]
TEXT_PROTOTYPE = config["text_prototype"]
SYNTHESIZE = config["synthesize"]


def prototype_dir(strategy):
    """Text prototypes of the paper's DCS strategy sit at the contract path; ablations beside it."""
    return "prototypes" if strategy == "prototype" else f"prototypes-{strategy}"


def prototype_strategy(wildcards):
    """The prompt strategy of a text-prototype folder name (the inverse of prototype_dir)."""
    return "prototype" if wildcards.prototypes == "prototypes" else wildcards.prototypes.removeprefix("prototypes-")


def prototype_file(wildcards):
    return f"{RESULTS}/{prototype_dir(wildcards.strategy)}/ipc{wildcards.ipc}/seed{wildcards.seed}/{wildcards.cls}.json"


def finetune_for_seed(wildcards):
    return f"{RESULTS}/finetune/{finetune_name(int(wildcards.seed))}"


# --- stages 8-9: evaluation, baselines, aggregation --------------------------

EVALUATE = config["evaluate"]
SELECTIONS = [m for m in config["methods"] if m in ("random", "herding", "kcenter")]


def distilled_methods():
    """Distilled sets with IPC images per class: one per prompt strategy for vlcp, then the baselines."""
    vlcp = [f"vlcp-{s}" for s in TEXT_PROTOTYPE["strategies"]] if "vlcp" in config["methods"] else []
    return vlcp + SELECTIONS


def distilled_set(method, ipc, seed):
    return f"{RESULTS}/distilled/{method}/ipc{ipc}/seed{seed}"


def evaluation_runs():
    """(method, ipc, distillation seed) of every trained set; 'full' once, with IPC 'all'."""
    runs = [(m, i, s) for m in distilled_methods() for i in config["ipc"] for s in config["seeds"]]
    return runs + ([("full", "all", config["seeds"][0])] if "full" in config["methods"] else [])


def accuracy_files():
    return [
        f"{RESULTS}/eval/{m}/ipc{i}/seed{s}/{model}/eval{e}.csv"
        for m, i, s in evaluation_runs()
        for model in EVALUATE["models"]
        for e in EVALUATE["seeds"]
    ]


def evaluate_train_input(wildcards):
    if wildcards.method == "full":
        return index_files("train")
    return expand(f"{distilled_set(wildcards.method, wildcards.ipc, wildcards.seed)}/{{cls}}", cls=CLASSES)


def evaluate_source(wildcards, input):
    """The training-set arguments of vlcp.evaluate: a distilled ImageFolder, or the train index for 'full'."""
    if wildcards.method == "full":
        return "--train-index " + " ".join(shlex.quote(f) for f in input.train)
    return "--train-dir " + shlex.quote(distilled_set(wildcards.method, wildcards.ipc, wildcards.seed))


def evaluate_epochs(wildcards):
    if wildcards.ipc == "all":
        return EVALUATE["full_epochs"]
    return epochs_for_ipc(EVALUATE["epochs"], int(wildcards.ipc), EVALUATE["epochs_scale"])


def evaluate_params():
    """Training settings that change the accuracy (epochs come per IPC, batch sizes for testing do not count)."""
    skip = ("models", "seeds", "epochs", "epochs_scale", "full_epochs", "test_batch_size")
    return {k: v for k, v in EVALUATE.items() if k not in skip}


def report_grids():
    return [
        f"{RESULTS}/report/grids/{m}-ipc{i}-seed{s}.png"
        for m in distilled_methods()
        for i in config["ipc"]
        for s in config["seeds"]
    ]


# --- cluster resources ------------------------------------------------------


def rule_resources(name):
    """Resources of a rule from config `resources`; memory and run time grow with each retry."""
    spec = config["resources"][name]
    return {
        "gpu": spec["gpu"],
        "cpus_per_task": spec["cpus_per_task"],
        "mem_mb": lambda wildcards, attempt: spec["mem_mb"] * attempt,
        "runtime": lambda wildcards, attempt: spec["runtime"] * attempt,
    }

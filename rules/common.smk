# The only place that reads `config`: paths, wildcard values and input functions
# for every stage. Rules take what they need from the names defined here.

import re
import shlex
from pathlib import Path, PurePath

from vlcp import demo_data
from vlcp.config import (
    ConfigError,
    check_config,
    check_models,
    evaluation_settings,
    soft_label_settings,
    teacher_settings,
)
from vlcp.index import DatasetError, SPLITS, find_classes
from vlcp.settings import ResultNeutral, execution_settings, options, stage_settings

try:
    check_config(config)
    check_models(config)
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
        inherited = ""
        if DATASET["classes"] and "classes" not in USER_DATASET:
            inherited = (
                " dataset.classes comes from config/config.yaml (ImageNette's classes, the default run's); "
                "set dataset.classes in your config, [] for every class folder on disk."
            )
        raise WorkflowError(f"Dataset error (dataset.root = {DATA_ROOT!r}): {err}{inherited}") from None


CLASSES = configured_classes()


def external_sets():
    """Distilled sets made elsewhere (config `external`), name -> (folder, IPC), checked before any job starts."""
    from vlcp.external import ExternalSetError, scan

    found = {}
    for name, folder in config["external"].items():
        try:
            found[name] = (folder, scan(name, folder, CLASSES, DATASET["image_extensions"]))
        except ExternalSetError as err:
            raise WorkflowError(str(err)) from None
    return found


EXTERNAL = external_sets()
OWN_METHODS = "vlcp-[a-z+]+|random|herding|kcenter"
EXTERNAL_METHODS = "|".join(re.escape(name) for name in EXTERNAL) or "(?!)"


wildcard_constraints:
    split="|".join(SPLITS),
    cls="[^/]+",
    part="part[0-9]+",
    ft="seed[0-9]+|shared",
    ipc="[0-9]+",
    seed="[0-9]+",
    strategy="prototype|label|label\+keywords|gpt",
    method=f"{OWN_METHODS}|full|{EXTERNAL_METHODS}",
    baseline="random|herding|kcenter",
    model="convnet6|resnetap10|resnet18",


# --- stage 1: index ---------------------------------------------------------


def class_folders(wildcards):
    """The folders an index job reads; for the demo, the whole written demo set."""
    if DEMO:
        return [DATA_ROOT]
    return [f"{DATA_ROOT}/{wildcards.split}/{cls}" for cls in job_classes(wildcards)]


def label_table_input(wildcards):
    """The label TSV when dataset.label_table is a file (its edits rerun the index)."""
    table = DATASET["label_table"]
    if table in ("imagenet", "folder") or (DEMO and PurePath(table).is_relative_to(DATA_ROOT)):
        return []
    return [table]


def label_overrides(wildcards):
    """Per class of the job, quoted for the shell: the label text of config dataset.labels, or '' for the table's."""
    return " ".join(shlex.quote(DATASET["labels"].get(cls, "")) for cls in job_classes(wildcards))


def index_files(split, kind="jsonl"):
    return all_class_paths(f"index/{split}", f".{kind}")


# --- models -----------------------------------------------------------------

TINY_MODEL_DIR = f"{RESULTS}/models"


def model_path(role):
    """Where a stage loads a model from: a hub id, a local folder, or the tiny model this run builds."""
    name = config["models"][role]
    kind = {"diffusion": "stable-diffusion", "captioner": "llava", "text_generator": "gpt"}[role]
    return f"{TINY_MODEL_DIR}/tiny-{kind}" if name == "tiny" else name


def fixed_param(value):
    """A params value the same for every job of a rule, given as a function of the wildcards: Snakemake
    compares it to decide reruns (a function of the input it would not), and leaves braces in it alone
    (templates such as caption.prompt's {label})."""
    return lambda wildcards: value


def model_param(role):
    """The model a job loads, for its command line: a params value, so a new model reruns the job."""
    return fixed_param(model_path(role))


def tiny_weights(wildcards):
    """The shipped weights the tiny model of this kind carries: the digit VAE and U-Net for the tiny
    Stable Diffusion when models.tiny_pretrained is set, else none."""
    if wildcards.kind != "stable-diffusion" or not config["models"]["tiny_pretrained"]:
        return []
    folder = Path(workflow.basedir) / "vlcp" / "data" / "tiny_sd_digits"
    return [str(folder / f"{name}.safetensors") for name in ("vae", "unet")]


def model_variant(role):
    """--variant for a stage that loads the base model, when the config names one."""
    variant = config["models"][f"{role}_variant"]
    return f"--variant {shlex.quote(variant)}" if variant else ""


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

FINETUNE = config["finetune"]


def caption_options():
    """The caption settings an output depends on; the sampling settings only when sampling."""
    settings = stage_settings(config, "caption")
    if not settings["do_sample"]:
        settings = {k: v for k, v in settings.items() if k not in ("temperature", "seed")}
    return fixed_param(options(settings))


def encode_train_option():
    """The fine-tuning latents an encode job also stores: centre crops at the fine-tune resolution,
    mirrored too for random flips, when fine-tuning trains from the cache."""
    if not FINETUNE["from_latents"]:
        return ""
    flip = " --flip" if FINETUNE["random_flip"] else ""
    return f"--train-resolution {FINETUNE['resolution']}{flip}"


def finetune_name(seed):
    return f"seed{seed}" if FINETUNE["per_seed"] else "shared"


def finetune_seed(wildcards):
    return int(wildcards.ft[len("seed") :]) if wildcards.ft.startswith("seed") else config["seeds"][0]


def finetune_inputs(wildcards):
    return {
        "index": all_class_inputs("index/train", ".jsonl"),
        "captions": all_class_inputs("captions", ".jsonl"),
        "latents": all_class_inputs("latents", ".safetensors") if FINETUNE["from_latents"] else [],
        "data": [] if FINETUNE["from_latents"] else [DATA_ROOT],
        "model": model_input("diffusion"),
    }


def finetune_files():
    """The per-class files a fine-tune job reads, for its command line."""
    return {
        "index": all_class_paths("index/train", ".jsonl"),
        "captions": all_class_paths("captions", ".jsonl"),
        "latents": all_class_paths("latents", ".safetensors") if FINETUNE["from_latents"] else [],
    }


def stage_options(name):
    """Stage ``name``'s settings (its config section) as its command-line options: a params value, so that
    changing one reruns the stage and what depends on it."""
    return fixed_param(options(stage_settings(config, name)))


def execution_options(name):
    """Stage ``name``'s settings of config section ``execution`` as options that no rerun depends on."""
    return ResultNeutral(execution_settings(config, name))


# --- stages 5-7: image prototypes, text prototypes, synthesis ---------------

TEXT_PROTOTYPE = config["text_prototype"]


def prototype_dir(strategy):
    """Text prototypes of the paper's DCS strategy sit at the contract path; ablations beside it."""
    return "prototypes" if strategy == "prototype" else f"prototypes-{strategy}"


def prototype_strategy(wildcards):
    """The prompt strategy of a text-prototype folder name (the inverse of prototype_dir)."""
    return "prototype" if wildcards.prototypes == "prototypes" else wildcards.prototypes.removeprefix("prototypes-")


def text_generator_input(wildcards):
    """The text generator a text-prototype job of the gpt strategy loads, when this run builds it."""
    return model_input("text_generator") if prototype_strategy(wildcards) == "gpt" else []


def text_generator_option(wildcards):
    """The text generator of the gpt strategy on the command line."""
    return (
        f"--text-generator {shlex.quote(model_path('text_generator'))}"
        if prototype_strategy(wildcards) == "gpt"
        else ""
    )


def text_prototype_options(wildcards):
    """The text-prototype settings; the generator's only for the gpt strategy, so that changing them
    reruns nothing else."""
    settings = stage_settings(config, "text_prototype")
    if prototype_strategy(wildcards) != "gpt":
        settings = {k: v for k, v in settings.items() if not k.startswith("generator_")}
    return options(settings)


def prototype_folder(wildcards):
    return f"{prototype_dir(wildcards.strategy)}/ipc{wildcards.ipc}/seed{wildcards.seed}"


def prototype_input(wildcards):
    """The text prototypes a synthesis job reads, of its prompt strategy (file or part record)."""
    return class_file(prototype_folder(wildcards), ".json").format(**dict(wildcards.items()))


def prototype_paths(wildcards):
    return class_paths(prototype_folder(wildcards), ".json")(wildcards)


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
    """(method, ipc, distillation seed) of every trained set: the run's own, each external set (its IPC,
    seed 0), and 'full' once, with IPC 'all'."""
    runs = own_sets() + [(name, ipc, 0) for name, (_, ipc) in EXTERNAL.items()]
    return runs + ([("full", "all", config["seeds"][0])] if "full" in config["methods"] else [])


# The models each protocol trains: the soft-label protocol knows two of Minimax's (vlcp.rded.STUDENTS).
PROTOCOL_MODELS = {"minimax": ("convnet6", "resnetap10", "resnet18"), "rded": ("resnet18", "convnet6")}


def accuracy_files():
    """Every evaluation run's row: each protocol's models on each set; soft labels only for distilled sets."""
    return [
        f"{RESULTS}/eval/{p}/{m}/ipc{i}/seed{s}/{model}/eval{e}.csv"
        for p in EVALUATE["protocols"]
        for m, i, s in evaluation_runs()
        if not (p == "rded" and m == "full")
        for model in EVALUATE["models"]
        if model in PROTOCOL_MODELS[p]
        for e in EVALUATE["seeds"]
    ]


TEACHER = config["teacher"]


def teacher_file():
    """The soft-label protocol's teacher: evaluate.teacher, or the one the teacher rule trains."""
    return EVALUATE["teacher"] or f"{RESULTS}/teacher/{TEACHER['architecture']}.safetensors"


def teacher_input(wildcards):
    return [teacher_file()] if wildcards.protocol == "rded" else []


def evaluate_stage(wildcards):
    """The module that trains one evaluation run: vlcp.evaluate (hard labels) or vlcp.rded (soft labels)."""
    return "rded" if wildcards.protocol == "rded" else "evaluate"


def teacher_options(wildcards, input):
    if wildcards.protocol != "rded":
        return ""
    return f"--teacher {shlex.quote(input.teacher[0])} --teacher-architecture {TEACHER['architecture']}"


def evaluation_execution(wildcards):
    """The result-neutral options of the protocol's stage (not compared by Snakemake: a ResultNeutral)."""
    return execution_options("soft_label" if wildcards.protocol == "rded" else "evaluate")


def teacher_options_of_training():
    return fixed_param(options(teacher_settings(config, len(CLASSES))))


def selection_latents(wildcards):
    """The latents a baseline selection reads (file or part record): none for random."""
    return (
        []
        if wildcards.baseline == "random"
        else class_file("latents", ".safetensors").format(**dict(wildcards.items()))
    )


def selection_latent_option(wildcards):
    if wildcards.baseline == "random":
        return ""
    paths = " ".join(map(shlex.quote, class_paths("latents", ".safetensors")(wildcards)))
    return f"--latents {paths}"


def set_manifest(method, ipc, seed):
    """The list of a distilled set's images: what evaluation and the grid wait for."""
    return f"{distilled_set(method, ipc, seed)}.manifest.tsv"


def evaluate_train_input(wildcards):
    if wildcards.method == "full":
        return f"{RESULTS}/index/train.jsonl"
    return set_manifest(wildcards.method, wildcards.ipc, wildcards.seed)


def evaluate_source(wildcards, input):
    """The training set of vlcp.evaluate: a distilled set's manifest, or the train index for 'full'."""
    option = "--train-index" if wildcards.method == "full" else "--train-manifest"
    return f"{option} {shlex.quote(input.train)}"


def evaluate_options(wildcards):
    """The training settings of one evaluation job, open values filled in as Minimax does (hard labels) or
    RDED does (soft labels) for this IPC and class count."""
    if wildcards.protocol == "rded":
        return options(soft_label_settings(config["soft_label"], wildcards.ipc, len(CLASSES), DATASET["eval_size"]))
    return options(evaluation_settings(EVALUATE, wildcards.ipc, len(CLASSES), DATASET["eval_size"]))


def own_sets():
    """(method, IPC, seed) of every distilled set the run makes."""
    return [(m, i, s) for m in distilled_methods() for i in config["ipc"] for s in config["seeds"]]


def report_grids():
    sets = own_sets() + [(name, ipc, 0) for name, (_, ipc) in EXTERNAL.items()]
    return [f"{RESULTS}/report/grids/{m}-ipc{i}-seed{s}.png" for m, i, s in sets]


def export_targets():
    """Every distilled set of the run packaged for sharing, and the run's captions when it has any."""
    sets = [f"{RESULTS}/export/{m}-ipc{i}-seed{s}" for m, i, s in own_sets()]
    return sets + ([f"{RESULTS}/export/captions.jsonl"] if "vlcp" in config["methods"] else [])


# --- cluster resources ------------------------------------------------------


def rule_threads(name):
    """A rule's threads are its cores: Snakemake hands them to the job as OMP_NUM_THREADS and friends."""
    return config["resources"][name]["cpus_per_task"]


def rule_resources(name, per_class=False):
    """Resources of a rule from config `resources`; memory and run time grow with each retry.
    The run time of each per-class rule is per class; a job of a part asks for its classes' sum."""
    spec = config["resources"][name]
    classes = config["classes_per_job"] if per_class else 1
    return {
        "gpu": spec["gpu"],
        "cpus_per_task": spec["cpus_per_task"],
        "mem_mb": lambda wildcards, attempt: spec["mem_mb"] * attempt,
        "runtime": lambda wildcards, attempt: spec["runtime"] * attempt * classes,
    }

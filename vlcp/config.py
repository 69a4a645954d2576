"""Messages for configuration errors, and the checks a JSON Schema cannot express.

The Snakefile validates the config with ``snakemake.utils.validate``; these
helpers turn a failure into one line that names the key, the value and what is
allowed, before any job starts.
"""

import os
from pathlib import Path

import jsonschema

from vlcp.errors import VlcpError
from vlcp.settings import stage_keys

# The run when no config file is given: a preset (relative to the repository).
DEFAULT_RUN = "config/presets/imagenette.yaml"

SCHEMA_WORDS = {
    "minimum": "at least {}",
    "maximum": "at most {}",
    "exclusiveMinimum": "greater than {}",
    "exclusiveMaximum": "less than {}",
    "multipleOf": "a multiple of {}",
    "minItems": "at least {} item(s)",
    "minLength": "at least {} character(s)",
    "pattern": "matching the pattern {}",
}


class ConfigError(VlcpError, ValueError):
    """A configuration value that is not allowed; the message names the key."""


def key_path(path):
    """``['cluster', 'n_init']`` -> ``'cluster.n_init'``; list items as ``[i]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def allowed(schema):
    """What a schema allows, in words: type, choices, range and its description."""
    words = []
    if "enum" in schema:
        words.append("one of " + ", ".join(repr(v) for v in schema["enum"]))
    elif "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        words.append(" or ".join(kinds))
    for keyword, template in SCHEMA_WORDS.items():
        if keyword == "pattern" and "x-pattern" in schema:
            words.append(schema["x-pattern"])  # the pattern's meaning in words, not the expression
        elif keyword in schema:
            words.append(template.format(schema[keyword]))
    if schema.get("type") == "object" and "properties" in schema:
        words.append("keys " + ", ".join(schema["properties"]))
    text = ", ".join(words)
    if "description" in schema:
        text += f" ({schema['description'].strip()})"
    return text


def describe_validation_error(error):
    """One readable message for a ``jsonschema.ValidationError`` on the config."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        unknown = sorted(set(error.instance) - set(known))
        where = f"under {key_path(path)}" if path else "at the top level"
        # a key that belongs one level down, in a section nested here (d4m.synthesize.guidance_scale)
        nested = [
            key_path([*path, name, key])
            for key in unknown
            for name, spec in known.items()
            if key in spec.get("properties", {})
        ]
        hint = f" Did you mean {', '.join(nested)}?" if nested else ""
        return (
            f"Invalid config: unknown key(s) {', '.join(map(repr, unknown))} {where}.{hint} "
            f"Allowed keys there: {', '.join(known)}. See config/schema.yaml."
        )
    if error.validator == "required":
        return f"Invalid config at {key_path(path)}: {error.message}. See config/schema.yaml."
    value = error.instance
    if error.validator == "pattern" and "x-pattern" in error.schema:
        return f"Invalid config: {key_path(path)} = {value!r} is not allowed: it {error.schema['x-pattern']}."
    return (
        f"Invalid config: {key_path(path)} = {value!r} is not allowed ({error.message}). "
        f"Allowed: {allowed(error.schema)}"
    )


def find_validation_error(exc):
    """The ``jsonschema.ValidationError`` behind Snakemake's ``WorkflowError``, if any."""
    seen = [exc]
    while seen:
        item = seen.pop()
        if isinstance(item, jsonschema.ValidationError):
            return jsonschema.exceptions.best_match([item, *item.context]) if item.context else item
        seen.extend(arg for arg in getattr(item, "args", ()) if isinstance(arg, BaseException))
        seen.extend(e for e in (item.__cause__, item.__context__) if e is not None)
    return None


def validate_config(config, schema):
    """Validate ``config`` against the schema file ``schema``, filling its defaults; a failure is a
    ConfigError of one line per problem, each naming its key (the workflow's message and the plan's alike)."""
    problems = schema_problems(config, schema)
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def schema_problems(config, schema):
    """Validate ``config`` against the schema file ``schema`` as Snakemake does, filling its defaults; every
    value the schema refuses, as a list of one-line messages (empty when the config is valid)."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(schema), set_default=True)
    except WorkflowError as err:
        problem = find_validation_error(err)
        if problem is None:
            return [str(err).strip().splitlines()[0]]
        import yaml

        rules = yaml.safe_load(Path(schema).read_text())
        found = sorted(jsonschema.validators.validator_for(rules)(rules).iter_errors(config), key=lambda e: e.path)
        lines = [
            describe_validation_error(jsonschema.exceptions.best_match([e, *e.context]) if e.context else e)
            for e in found
        ]
        return list(dict.fromkeys(lines)) or [describe_validation_error(problem)]
    return []


def epochs_for_ipc(table, ipc, scale=None, num_classes=10):
    """Training epochs for one IPC: the first row of ``table`` covering it, times ``scale``; with no scale,
    Minimax's rule (``ipc_epoch`` in ``argument.py``): exactly 100 classes train 2/3 as long, rounded
    down to a multiple of 100."""
    for row in sorted(table, key=lambda r: r["max_ipc"]):
        if ipc <= row["max_ipc"]:
            epochs = row["epochs"]
            break
    else:
        raise ConfigError(
            f"Invalid config: evaluate.epochs has no entry for ipc {ipc} "
            f"(largest max_ipc is {max(r['max_ipc'] for r in table)}); add a row with max_ipc >= {ipc}."
        )
    if scale is not None:
        return max(1, round(epochs * scale))
    if num_classes == 100:
        epochs = int(2 / 3 * epochs)
        epochs -= epochs % 100
    return epochs


# Minimax's train.py settings (argument.py): its defaults, and above 100 classes ("We need to tune lr
# and weight decay") lr 0.1, weight decay 1e-4 and batch max(128, 64).
FEW_CLASSES = {"learning_rate": 0.01, "weight_decay": 5e-4, "batch_size": 64}
MANY_CLASSES = {"learning_rate": 0.1, "weight_decay": 1e-4, "batch_size": 128}


def input_size(evaluate, eval_size):
    """The classifiers' input side: ``evaluate.input_size``, or, left open, 224 for images of 224 px and
    more (Minimax's size for ImageNet data) and the images' own side below."""
    return evaluate["input_size"] or min(eval_size, 224)


def evaluation_settings(evaluate, ipc, num_classes, eval_size):
    """The settings of one evaluation run, the config's ``evaluate`` section with its open values filled in
    as Minimax's ``argument.py`` fills them for ``num_classes`` classes and the IPC (``'all'`` for the
    whole train set): epochs, test cadence (every epochs // 100, every epoch for the whole set), and
    above 100 classes lr 0.1, weight decay 1e-4 and batch 128; the input side from ``eval_size``."""
    rule = MANY_CLASSES if num_classes > 100 else FEW_CLASSES
    if ipc == "all":
        epochs, test_every = evaluate["full_epochs"], 1
    else:
        epochs = epochs_for_ipc(evaluate["epochs"], int(ipc), evaluate["epochs_scale"], num_classes)
        test_every = max(1, epochs // 100)
    resolved = {
        "epochs": epochs,
        "test_every": evaluate["test_every"] or test_every,
        "input_size": input_size(evaluate, eval_size),
    }
    resolved.update({k: rule[k] if evaluate[k] is None else evaluate[k] for k in rule})
    return {**{k: evaluate[k] for k in stage_keys("evaluate")}, **resolved}


# RDED's argument.py: the training batch when --re-batch-size is 0, by IPC; x2 for 100 and for 1000 classes.
RDED_BATCH_BY_IPC = ((50, 100), (10, 50), (1, 10))


def rded_batch_size(ipc, num_classes):
    """RDED's training batch (``argument.py``): IPC 50 -> 100, 10 -> 50, 1 -> 10, doubled for 100 and for
    1000 classes, at most IPC x classes. RDED leaves other IPCs undefined; they take the entry of the
    largest listed IPC below them (IPC 5 -> 10, 20 -> 50, 100 -> 100)."""
    base = next((b for least, b in RDED_BATCH_BY_IPC if ipc >= least), RDED_BATCH_BY_IPC[-1][1])
    if num_classes in (100, 1000):
        base *= 2
    return min(base, ipc * num_classes)


def soft_label_settings(soft, ipc, num_classes, eval_size):
    """The settings of one rded-protocol run: the soft_label section with the batch (RDED's rule for this
    IPC and class count) and the input side (as evaluate.input_size's) filled in."""
    settings = {k: soft[k] for k in stage_keys("soft_label")}
    settings["batch_size"] = soft["batch_size"] or rded_batch_size(int(ipc), num_classes)
    settings["input_size"] = input_size(soft, eval_size)
    return settings


def teacher_settings(config, num_classes):
    """The teacher's training: the Minimax settings of a whole train set with teacher.epochs, at the
    students' input side, and the teacher section's own options."""
    eval_size = config["dataset"]["eval_size"]
    settings = evaluation_settings(config["evaluate"], "all", num_classes, eval_size)
    # norm: what the record shows; the teacher's networks (vlcp.rded.build_network) have batch norm
    settings.update(
        epochs=config["teacher"]["epochs"], input_size=input_size(config["soft_label"], eval_size), norm="batch"
    )
    return {**settings, **{k: config["teacher"][k] for k in stage_keys("teacher")}}


# The file at the top of each kind of checkpoint folder.
MODEL_MARKERS = {"diffusion": "model_index.json", "captioner": "config.json", "text_generator": "config.json"}


def looks_like_path(name):
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or Path(name).expanduser().exists()


def check_model(role, name):
    """A model of the config, checked as far as the plan can: a local folder must exist and hold its
    checkpoint's top file; with HF_HUB_OFFLINE set, a hub id must be in the local cache."""
    key, marker = f"models.{role}", MODEL_MARKERS[role]
    if name == "tiny":
        return
    if looks_like_path(name):
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise ConfigError(
                f"Invalid config: {key} = {name!r}: no such folder ({folder.resolve()}); "
                "give the folder of a downloaded checkpoint or a hub id."
            )
        if not (folder / marker).is_file():
            raise ConfigError(
                f"Invalid config: {key} = {name!r} has no {marker}, so it is not a checkpoint folder "
                "of that kind; give the folder a download of the model made (e.g. `hf download <id> "
                "--local-dir <folder>`)."
            )
        return
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name, marker), str):
            raise ConfigError(
                f"Invalid config: {key} = {name!r} is not in the local Hugging Face cache and "
                "HF_HUB_OFFLINE is set; download it once on a machine with internet, or point "
                f"{key} at a local folder."
            )


def read_config_file(path):
    """The mapping in one YAML config file; a syntax error is reported with the file, line and column
    (Snakemake's own message says only that the file is not valid YAML)."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        import difflib

        folder = Path(path).parent
        names = [p.name for p in folder.glob("*.y*ml")] if folder.is_dir() else []
        near = difflib.get_close_matches(Path(path).name, names, n=1)
        hint = f"; did you mean {folder / near[0]}?" if near else ""
        raise ConfigError(f"config file {path}: {err.strerror}{hint}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"config file {path}{where}: not valid YAML: {problem}. Fix it and run again.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path}: the top level must be a mapping of keys (run:, dataset:, ...), "
            f"not a {type(data).__name__}"
        )
    return data


def merge_config(base, over):
    """``over`` merged into ``base`` (in place, returned) as Snakemake merges config files: mappings key by
    key, anything else (lists included) replaced."""
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        base[key] = merge_config(base[key], value) if both else value
    return base


def read_run_config(files, repo):
    """The config a run of these files gets, as the workflow makes it, before the schema: config/config.yaml,
    then the files (or, with none, the default run's preset) over it key by key, lists replaced."""
    config = read_config_file(Path(repo) / "config" / "config.yaml")
    for path in files or [Path(repo) / DEFAULT_RUN]:
        merge_config(config, read_config_file(path))
    return config


def load_run_config(files, repo):
    """``read_run_config`` with the schema's defaults filled in and its checks passed."""
    return validate_config(read_run_config(files, repo), Path(repo) / "config" / "schema.yaml")


def check_models(config):
    """``check_model`` for every model the run loads: the captioner only for vlcp, the text generator only
    for its gpt strategy; and the safety checker the run asks for. Raises one ConfigError, a line a problem."""
    vlcp = "vlcp" in config["methods"]
    roles = ["diffusion"] + (["captioner"] if vlcp else [])
    roles += ["text_generator"] if vlcp and "gpt" in config["text_prototype"]["strategies"] else []
    problems = [line for role in roles for line in problem_of(check_model, role, config["models"][role])]
    problems += problem_of(check_safety_checker, config)
    if problems:
        raise ConfigError("\n".join(problems))


def problem_of(check, *args):
    """The message of ``check(*args)``'s ConfigError as a list of one (empty when it passes)."""
    try:
        check(*args)
    except ConfigError as err:
        return [str(err)]
    return []


def check_safety_checker(config):
    """A synthesis that runs the checkpoint's safety checker (synthesize.safety_checker for VLCP's sets,
    d4m.synthesize.safety_checker for D4M's) needs a models.diffusion that ships one and its feature extractor."""
    sections = {
        "vlcp": ("synthesize.safety_checker", config["synthesize"]),
        "d4m": ("d4m.synthesize.safety_checker", config["d4m"]["synthesize"]),
    }
    asking = [
        key
        for method, (key, settings) in sections.items()
        if method in config["methods"] and settings["safety_checker"]
    ]
    name = config["models"]["diffusion"]
    if not asking:
        return
    problem = None
    if name == "tiny":
        problem = "the tiny model has none"
    elif looks_like_path(name):
        from vlcp.models import safety_checker_gaps

        missing = safety_checker_gaps(name)
        problem = f"its {MODEL_MARKERS['diffusion']} and folder lack {', '.join(missing)}" if missing else None
    if problem:
        raise ConfigError(
            f"Invalid config: {' and '.join(asking)} = true runs the safety checker of models.diffusion = {name!r}, "
            f"but {problem}; set it to false, or use a checkpoint that ships one (stable-diffusion-v1-5 does)."
        )


# Where the teachers of the authors' soft-label runs come from, by file name: the ImageNet-1K teacher is
# torchvision's (RDED's synthesize/utils.py, load_model: thmodels.resnet18(pretrained=True)); the CIFAR
# teachers are RDED's, read from ./data/pretrain_models/{dataset}_{model}.pth by the same function.
RDED_OBSERVERS = (
    "LINs-lab/RDED's README links them (a Google Drive folder of its pretrained observers); the "
    "repository zou-yawen/Dataset-Distillation-via-Vision-Language-Category-Prototype carries the "
    "file under 04_evaluation/RDED/data/pretrain_models/"
)
KNOWN_TEACHERS = {
    "resnet18-f37072fd.pth": "torchvision's ResNet-18 IMAGENET1K_V1 weights (69.76 % top-1), the authors' ImageNet-1K "
    "teacher: download https://download.pytorch.org/models/resnet18-f37072fd.pth (torchvision's "
    "resnet18(weights='IMAGENET1K_V1') also leaves it in ~/.cache/torch/hub/checkpoints/)",
    "cifar10_resnet18_modified.pth": f"RDED's CIFAR-10 ResNet-18 (modified stem, 93.86 % top-1): {RDED_OBSERVERS}",
    "cifar100_resnet18_modified.pth": f"RDED's CIFAR-100 ResNet-18 (modified stem, 72.27 % top-1): {RDED_OBSERVERS}",
}


def check_teacher(config):
    """The teacher file, when evaluate.teacher names one and the run uses it (the rded protocol, or VLCP
    sets of the best of K > 1 candidates): it must exist before any job starts; the message says where a
    known teacher comes from."""
    teacher = config["evaluate"]["teacher"]
    scores = "vlcp" in config["methods"] and max(config["synthesize"]["candidates"]) > 1
    used = "rded" in config["evaluate"]["protocols"] or scores
    if not used or teacher is None or Path(teacher).expanduser().is_file():
        return
    source = KNOWN_TEACHERS.get(Path(teacher).name)
    where = (
        f"It is {source}; put it there."
        if source
        else "Give the weights file of a teacher.architecture classifier of this dataset's classes, or null to "
        "have the teacher rule train one."
    )
    raise ConfigError(
        f"Invalid config: evaluate.teacher = {teacher!r}: no such file ({Path(teacher).expanduser().resolve()}). "
        f"{where}"
    )


def check_results_dir(config):
    """results_dir must be a folder this user can write, or one that can be made: its nearest existing
    ancestor a writable folder."""
    results = Path(config["results_dir"]).expanduser() / config["run"]
    existing = next(p for p in (results, *results.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise ConfigError(
            f"Invalid config: results_dir = {config['results_dir']!r}: {existing} is a file, not a folder; "
            "set results_dir to a folder."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"Invalid config: results_dir = {config['results_dir']!r}: cannot write in {existing.resolve()} "
            "(permissions or a read-only file system); set results_dir to a folder you can write."
        )


def check_label_table(config):
    """A label TSV of the user's (dataset.label_table) is read whole at plan time: a malformed line stops
    the run before any job, naming the file and the line."""
    from vlcp.labels import LabelError, read_label_table

    dataset = config["dataset"]
    if dataset["source"] == "demo" and dataset["label_table"] == "imagenet":
        raise ConfigError(
            "Invalid config: dataset.label_table = 'imagenet' cannot label the demo digits; "
            "use the demo's labels.tsv under dataset.root, or 'folder'."
        )
    table = dataset["label_table"]
    made_by_demo = dataset["source"] == "demo" and table.startswith(dataset["root"].rstrip("/") + "/")
    if table in ("imagenet", "folder") or made_by_demo:
        return
    if not Path(table).is_file():
        raise ConfigError(
            f"Invalid config: dataset.label_table = {table!r} is not "
            f"a file (looked in {Path(table).resolve().parent}); "
            "give the path of a TSV file of class folder and label text, or 'imagenet' or 'folder'."
        )
    try:
        read_label_table(table)
    except LabelError as err:
        raise ConfigError(f"Invalid config: dataset.label_table = {table!r}: {err}") from None


def check_ipc_epochs(config):
    for ipc in config["ipc"]:
        epochs_for_ipc(config["evaluate"]["epochs"], ipc)


def check_latents_crop(config):
    finetune = config["finetune"]
    if finetune["from_latents"] and not finetune["center_crop"]:
        raise ConfigError(
            "Invalid config: finetune.center_crop = false needs finetune.from_latents = false "
            "(cached latents are centre crops; random crops must be encoded at every step)."
        )


def check_labels_listed(config):
    dataset = config["dataset"]
    listed = set(dataset["classes"])
    stray = sorted(set(dataset["labels"]) - listed) if listed else []
    if stray:
        raise ConfigError(
            f"Invalid config: dataset.labels names class(es) {stray} that dataset.classes does not list; "
            "add them to dataset.classes or remove their labels."
        )


# The checks across keys that the schema cannot state, each raising a ConfigError that names its key.
CONFIG_CHECKS = (
    check_teacher,
    check_results_dir,
    check_ipc_epochs,
    check_label_table,
    check_latents_crop,
    check_labels_listed,
)


def config_problems(config):
    """The message of every check of CONFIG_CHECKS that ``config`` fails, in that order."""
    return [line for check in CONFIG_CHECKS for line in problem_of(check, config)]


def check_config(config):
    """Checks across keys that the schema cannot state; raises one ConfigError (a line a problem)."""
    problems = config_problems(config)
    if problems:
        raise ConfigError("\n".join(problems))

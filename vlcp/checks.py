"""Every problem of a run that can be known before any job starts, found in one pass.

The workflow (rules/common.smk) and ``vlcp plan`` both call ``check_run``. A config with three mistakes
stops with three lines, one per problem, each naming its key or file, so that it is fixed in one round
trip; the same call says what will surprise the user later (``RunCheck.warnings``: an IPC larger than a
class).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from vlcp import demo_data
from vlcp.config import DEFAULT_RUN, ConfigError, check_models, config_problems, schema_problems


class RunProblems(ConfigError):
    """Problems found before any job: one line each in the message (``problems`` holds them)."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass
class RunCheck:
    """What the checks found out about a run that passed them."""

    classes: list
    external: dict = field(default_factory=dict)  # name -> (folder, IPC)
    warnings: list = field(default_factory=list)


def dataset_classes(config, default_run=False):
    """The run's class folders, in label-index order (``vlcp.index.find_classes``), or the demo's."""
    from vlcp.index import DatasetError, find_classes

    dataset = config["dataset"]
    if dataset["source"] == "demo":
        unknown = sorted(set(dataset["classes"]) - set(demo_data.CLASSES))
        if unknown:
            raise ConfigError(
                f"Invalid config: dataset.classes lists {unknown}, which the demo set does not have; "
                f"its classes are {', '.join(demo_data.CLASSES)}."
            )
        return list(dataset["classes"]) or sorted(demo_data.CLASSES)
    try:
        return find_classes(dataset["root"], dataset["classes"])
    except DatasetError as err:
        default = f" (no --configfile: the default run, {DEFAULT_RUN})" if default_run else ""
        raise ConfigError(f"Dataset error (dataset.root = {dataset['root']!r}{default}): {err}") from None


def external_sets(config, classes):
    """The distilled sets made elsewhere (config ``external``), name -> (folder, IPC); a list of problems."""
    from vlcp.external import ExternalSetError, scan

    found, problems = {}, []
    for name, folder in config["external"].items():
        try:
            found[name] = (folder, scan(name, folder, classes, config["dataset"]["image_extensions"]))
        except ExternalSetError as err:
            problems.append(str(err))
    return found, problems


def files_up_to(folder, limit, suffixes):
    """How many files with one of ``suffixes`` ``folder`` holds (links followed), counted up to ``limit``:
    a class of a million images costs no more than one of ``limit``."""
    count = 0
    for _, _, files in os.walk(folder, followlinks=True):
        count += sum(1 for f in files if f.lower().endswith(suffixes))
        if count >= limit:
            return limit
    return count


def small_classes(config, classes):
    """{class: train files} of the classes with fewer train files than the run's largest IPC."""
    dataset, ipc = config["dataset"], max(config["ipc"])
    if dataset["source"] == "demo":
        per_class = config["demo"]["train_per_class"]
        return {c: per_class for c in classes} if per_class < ipc else {}
    suffixes = tuple(s.lower() for s in dataset["image_extensions"])
    root = Path(dataset["root"]) / "train"
    counts = {c: files_up_to(root / c, ipc, suffixes) for c in classes}
    return {c: n for c, n in counts.items() if n < ipc}


def ipc_warning(config, small, total):
    """One line on the sets an IPC larger than some classes makes, saying what each method does there."""
    if not small:
        return None
    ipc = max(config["ipc"])
    listed = ", ".join(f"{c} ({n})" for c, n in list(small.items())[:10]) + (" ..." if len(small) > 10 else "")
    fewest = min(small.values())
    methods = config["methods"]
    fates = []
    baselines = [m for m in ("random", "herding", "kcenter") if m in methods]
    if baselines:
        fates.append(f"{', '.join(baselines)} take(s) all of such a class's images (a set of {fewest}, not {ipc})")
    clustered = [m for m in ("vlcp", "d4m") if m in methods]
    if clustered:
        fates.append(
            f"{' and '.join(clustered)} cannot make {ipc} clusters of {fewest} latents: each image is a prototype, "
            f"used in turn for the {ipc} images"
        )
    what = "; ".join(fates) or "the sets hold what there is"
    return (
        f"Warning: ipc {ipc} is more than the train files of {len(small)} of {total} class(es): {listed}. "
        f"The ipc{ipc} sets cannot have {ipc} distinct images there: {what}. summary.md lists the sets that "
        "came out smaller."
    )


def digits_warning(config):
    """One line when the tiny diffusion model, pretrained on handwritten digits, is to draw another dataset."""
    models = config["models"]
    if models["diffusion"] != "tiny" or models["tiny_pretrained"] is not True or config["dataset"]["source"] == "demo":
        return None
    return (
        "Warning: models.diffusion = 'tiny' carries weights pretrained on the demo's handwritten digits "
        "(models.tiny_pretrained = true), so the images it makes of this dataset will look like digits; "
        "models.tiny_pretrained: train pretrains it on this run's train images instead (3 to 5 minutes on "
        "2 CPU cores; config/cpu-trial.yaml does)."
    )


def check_run(config, schema, default_run=False, warn=True):
    """Check a run's config (``schema`` is config/schema.yaml) and what it names on disk, as far as can be
    before any job: the schema, the checks across keys, the models, the dataset's folders and the external
    sets. Every problem found is raised together (RunProblems); otherwise the run's RunCheck, with its
    warnings when ``warn`` (a cluster job, which parses the workflow again, says none and counts nothing)."""
    problems = schema_problems(config, schema)
    checked = not problems  # a config the schema refused may lack its defaults: checks on it may not hold

    def attempt(check, *args):
        try:
            return check(*args)
        except ConfigError as err:
            problems.extend(str(err).splitlines())
        except (KeyError, TypeError, AttributeError, ValueError):
            if checked:
                raise
        return None

    found = attempt(config_problems, config)
    problems.extend(found or [])
    attempt(check_models, config)
    classes = attempt(dataset_classes, config, default_run)
    external = {}
    if classes is not None:
        external, unusable = external_sets(config, classes) if checked else ({}, [])
        problems.extend(unusable)
    if problems:
        raise RunProblems(problems)
    if not warn:
        return RunCheck(classes, external)
    small = small_classes(config, classes)
    warnings = [w for w in [ipc_warning(config, small, len(classes)), digits_warning(config)] if w]
    return RunCheck(classes, external, warnings)

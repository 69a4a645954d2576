# What the files of rules/ share. The config (read and checked once, here), the run's paths, classes
# and distilled-set names, the models a stage loads, and the options and resources of a rule. The helpers
# of one rule file alone are in rules/functions/<stage>.smk, which that file includes (Snakemake's linter
# wants functions and rules in separate files).

import os
import re
import shlex
import sys
from pathlib import Path

# The workflow imports vlcp, and its jobs run `python -m vlcp <stage>` from any working directory or
# cluster node: both find the package beside the Snakefile. The prefix keeps Snakemake's default (set -euo
# pipefail); Snakemake formats it like a shell command, hence the doubled braces.
sys.path.insert(0, workflow.basedir)
PACKAGE_PATH = shlex.quote(workflow.basedir).replace("{", "{{").replace("}", "}}")
shell.prefix(f"set -euo pipefail; export PYTHONPATH={PACKAGE_PATH}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")

from vlcp import names
from vlcp.checks import RunProblems, check_run
from vlcp.config import DEFAULT_RUN
from vlcp.index import SPLITS
from vlcp.settings import ResultNeutral, execution_settings, options, stage_settings

# The default run, when no --configfile is given, is a preset: ImageNette's.
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, DEFAULT_RUN)


# Every problem of the config and of what it names on disk, before any job, one line each (the plan's
# lines too, vlcp/checks.py); a problem is the user's to fix, so it is said without a traceback.
try:
    RUN_CHECK = check_run(
        config,
        os.path.join(workflow.basedir, "config/schema.yaml"),
        default_run=not workflow.overwrite_configfiles,
        warn=workflow.is_main_process,
    )
except RunProblems as err:
    sys.exit(str(err))
for warning in RUN_CHECK.warnings:
    print(warning, file=sys.stderr)

RESULTS = f"{config['results_dir']}/{config['run']}"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
DATASET = config["dataset"]
DATA_ROOT = DATASET["root"]
DEMO = DATASET["source"] == "demo"
# Class folders of this run, in label-index order (sorted unless dataset.classes lists them).
CLASSES = RUN_CHECK.classes
# Distilled sets made elsewhere (config `external`), name -> (folder, IPC).
EXTERNAL = RUN_CHECK.external


def alternatives(words):
    """A wildcard pattern matching exactly these words."""
    return "|".join(re.escape(word) for word in words) or "(?!)"


# A VLCP set that keeps the best of K > 1 candidates per prototype is named vlcp-<strategy>-k<K>.
CANDIDATES = "-k(?:[2-9]|[1-9][0-9]+)"
OWN_METHODS = f"vlcp-(?:{alternatives(names.STRATEGIES)})(?:{CANDIDATES})?|{names.D4M}|{alternatives(names.BASELINES)}"
EXTERNAL_METHODS = alternatives(EXTERNAL)


wildcard_constraints:
    split=alternatives(SPLITS),
    part="[^/]+",
    ft="seed[0-9]+|shared",
    ipc="[0-9]+",
    seed="[0-9]+",
    strategy=alternatives(names.STRATEGIES),
    method=f"{OWN_METHODS}|full|{EXTERNAL_METHODS}",
    baseline=alternatives(names.BASELINES),
    model=alternatives(names.MODELS),


# Text prototypes of the paper's strategy sit at the contract path, prototypes/; the ablations beside it.
PROTOTYPE_DIRS = {s: "prototypes" if s == "prototype" else f"prototypes-{s}" for s in names.STRATEGIES}


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


def model_variant(role):
    """--variant for a stage that loads the base model, when the config names one."""
    variant = config["models"][f"{role}_variant"]
    return f"--variant {shlex.quote(variant)}" if variant else ""


def model_input(role):
    """The model folder as a rule input when this run builds it, else nothing to wait for."""
    return [model_path(role)] if config["models"][role] == "tiny" else []


# --- options ----------------------------------------------------------------


def stage_options(name):
    """Stage ``name``'s settings (its config section) as its command-line options: a params value, so that
    changing one reruns the stage and what depends on it."""
    return fixed_param(options(stage_settings(config, name)))


def execution_options(name):
    """Stage ``name``'s settings of config section ``execution`` as options that no rerun depends on."""
    return ResultNeutral(execution_settings(config, name))


# --- distilled sets ---------------------------------------------------------

# The soft-label protocol's teacher, which also scores synthesis candidates: the config's file, or the one
# the teacher rule trains.
TEACHER_ARCHITECTURE = config["teacher"]["architecture"]
TEACHER = config["evaluate"]["teacher"] or f"{RESULTS}/teacher/{TEACHER_ARCHITECTURE}.safetensors"


def own_sets():
    """(method, IPC, seed) of every distilled set the run makes: a set per prompt strategy and candidate
    count for vlcp, then d4m's and the baselines'."""
    vlcp = [
        names.vlcp_method(s, k)
        for s in config["text_prototype"]["strategies"]
        for k in config["synthesize"]["candidates"]
        if "vlcp" in config["methods"]
    ]
    methods = vlcp + [m for m in config["methods"] if m == names.D4M or m in names.BASELINES]
    return [(m, i, s) for m in methods for i in config["ipc"] for s in config["seeds"]]


def distilled_set(method, ipc, seed):
    return f"{RESULTS}/distilled/{method}/ipc{ipc}/seed{seed}"


def set_manifest(method, ipc, seed):
    """The list of a distilled set's images: what evaluation and the grid wait for."""
    return f"{distilled_set(method, ipc, seed)}.manifest.tsv"


def wildcard_manifest(wildcards):
    return set_manifest(wildcards.method, wildcards.ipc, wildcards.seed)


# --- cluster resources ------------------------------------------------------


def benchmark(rule, *wildcards):
    """A job's benchmark file (vlcp.cost reads them): benchmarks/<rule>/<name=value,...>.tsv."""
    return f"{BENCHMARKS}/{rule}/{','.join(f'{w}={{{w}}}' for w in wildcards) or 'job'}.tsv"


def rule_threads(rule):
    """A rule's threads are its cores: Snakemake hands them to the job as OMP_NUM_THREADS and friends."""
    return config["resources"][names.resources_entry(rule)]["cpus_per_task"]


def rule_resources(rule, per_class=False, times=lambda wildcards: 1):
    """Resources of ``rule`` from its entry of config `resources` (vlcp.names.RESOURCES); memory and run time
    grow with each retry. The run time of each per-class rule is per class; a job of a part asks for its
    classes' sum, and a job that does ``times(wildcards)`` times the work asks for as much more."""
    spec = config["resources"][names.resources_entry(rule)]
    classes = config["classes_per_job"] if per_class else 1
    return {
        "gpu": spec["gpu"],
        "cpus_per_task": spec["cpus_per_task"],
        "mem_mb": lambda wildcards, attempt: spec["mem_mb"] * attempt,
        "runtime": lambda wildcards, attempt: spec["runtime"] * attempt * classes * times(wildcards),
    }

# vlcp: dataset distillation via vision-language category prototypes.
# This file is the table of contents; each stage's rules are in rules/<stage>.smk,
# and rules/common.smk (with rules/parts.smk, for classes_per_job) is where the config is read.

import os
import shlex
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

# The workflow imports vlcp, and its jobs run `python -m vlcp <stage>` from any working directory or
# cluster node: both find the package beside this file. The prefix keeps Snakemake's default (set -euo
# pipefail); Snakemake formats it like a shell command, hence the doubled braces.
sys.path.insert(0, workflow.basedir)
PACKAGE_PATH = shlex.quote(workflow.basedir).replace("{", "{{").replace("}", "}}")
shell.prefix(f"set -euo pipefail; export PYTHONPATH={PACKAGE_PATH}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")


configfile: os.path.join(workflow.basedir, "config/config.yaml")


report: "report/workflow.rst"


# config/config.yaml's dataset is ImageNette's, the default run's. A config of the user's that names a
# dataset of its own (dataset.source or dataset.root) takes none of it: only what it sets, and the
# schema's defaults for the rest (every class folder on disk, folder names as labels).
from vlcp.config import own_dataset

USER_DATASET = workflow.config_settings.overwrite_config.get("dataset", {})
own_dataset(config, workflow.config_settings.overwrite_config)


from vlcp.config import ConfigError, validate_config

try:
    validate_config(config, os.path.join(workflow.basedir, "config/schema.yaml"))
except ConfigError as err:
    raise WorkflowError(str(err)) from None


include: "rules/common.smk"
include: "rules/parts.smk"
include: "rules/demo_data.smk"
include: "rules/tiny_models.smk"
include: "rules/index.smk"
include: "rules/caption.smk"
include: "rules/finetune.smk"
include: "rules/encode.smk"
include: "rules/cluster.smk"
include: "rules/text_prototype.smk"
include: "rules/synthesize.smk"
include: "rules/select.smk"
include: "rules/evaluate.smk"
include: "rules/aggregate.smk"
include: "rules/export.smk"


# Small bookkeeping jobs run where Snakemake runs, not as cluster jobs.
localrules:
    all,
    export,
    manifest,
    grid,


rule all:
    default_target: True
    input:
        all_targets(),

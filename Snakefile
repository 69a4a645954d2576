# vlcp: dataset distillation via vision-language category prototypes.
# The table of contents: the config, each stage's rules (rules/<stage>.smk, in pipeline order; what
# several share is in rules/common.smk, and the classes_per_job layer in rules/parts.smk) and the targets.

import os

from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config/config.yaml")


report: "report/workflow.rst"


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
include: "rules/d4m.smk"
include: "rules/select.smk"
include: "rules/evaluate.smk"
include: "rules/aggregate.smk"
include: "rules/export.smk"
include: "rules/gather.smk"


# Small bookkeeping jobs run where Snakemake runs, not as cluster jobs.
localrules:
    all,
    export,
    manifest,
    grid,
    cost,
    gather,


# A finished run ends by saying where its tables are, and how many dataset files the index stage left out.
onsuccess:
    from vlcp.aggregate import run_end

    print(run_end(RESULTS))


rule all:
    default_target: True
    input:
        all_targets(),

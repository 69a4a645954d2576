# The per-class folders a user reads, made from the folders of their parts (rules/parts.smk), with hard
# links: captions/, clusters/ipc<N>/seed<S>/ and prototypes*/ipc<N>/seed<S>/ (the results contract), and
# each distilled set, distilled/<set>/ipc<N>/seed<S>/ (an ImageFolder). A job per folder, where Snakemake
# runs; jobs downstream read the parts' folders, so they do not wait for it.

# Folder names, relative to the run's results, that the rule makes.
GATHERED = "|".join(
    [
        "captions",
        f"(?:clusters|{alternatives(PROTOTYPE_DIRS.values())})/ipc[0-9]+/seed[0-9]+",
        f"distilled/(?:{OWN_METHODS})/ipc[0-9]+/seed[0-9]+",
    ]
)


rule gather:
    input:
        lambda wildcards: every_part(wildcards.folder),
    output:
        directory(f"{RESULTS}/{{folder}}"),
    log:
        f"{LOGS}/gather/{{folder}}.log",
    benchmark:
        benchmark("gather", "folder")
    wildcard_constraints:
        folder=GATHERED,
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("gather")
    resources:
        **rule_resources("gather"),
    shell:
        "python -m vlcp gather --parts {input:q} --out {output:q} > {log:q} 2>&1"

# Stage 1: the image index per split and class, and the files rejected with reasons;
# a job per part of classes_per_job classes (see rules/parts.smk).


include: "functions/index.smk"


rule index:
    input:
        folder=class_folders,
        label_table=label_table_input,
    output:
        index=directory(part_folder("index/{split}")),
    log:
        part_log("index/{split}"),
    benchmark:
        benchmark("index", "split", "part")
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("index")
    resources:
        **rule_resources("index", per_class=True),
    params:
        index=in_part("index/{split}", ".jsonl"),
        rejected=in_part("index/{split}", ".rejected.tsv"),
        root=DATA_ROOT,
        label_table=DATASET["label_table"],
        classes=part_classes,
        labels=label_overrides,
        extensions=DATASET["image_extensions"],
        max_image_pixels=DATASET["max_image_pixels"],
        min_image_side=DATASET["min_image_side"],
    shell:
        "python -m vlcp index scan --root {params.root:q} --split {wildcards.split} --class {params.classes:q}"
        " --label-table {params.label_table:q} --label {params.labels}"
        " --extensions {params.extensions} --max-image-pixels {params.max_image_pixels}"
        " --min-image-side {params.min_image_side}"
        " --index {params.index:q} --rejected {params.rejected:q} > {log:q} 2>&1"


rule split_index:
    input:
        lambda wildcards: every_part(f"index/{wildcards.split}"),
    output:
        f"{RESULTS}/index/{{split}}.jsonl",
    log:
        f"{LOGS}/index/{{split}}.log",
    benchmark:
        benchmark("split_index", "split")
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("split_index")
    resources:
        **rule_resources("split_index"),
    params:
        index=lambda wildcards: every_class(f"index/{wildcards.split}", ".jsonl"),
    shell:
        "python -m vlcp index merge --index {params.index:q} --out {output:q} > {log:q} 2>&1"


rule index_summary:
    input:
        [f for split in SPLITS for f in every_part(f"index/{split}")],
    output:
        classes=f"{RESULTS}/index/classes.tsv",
        rejected=f"{RESULTS}/index/rejected.tsv",
    log:
        f"{LOGS}/index/summary.log",
    benchmark:
        benchmark("index_summary")
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("index_summary")
    resources:
        **rule_resources("index_summary"),
    params:
        index=[f for split in SPLITS for f in every_class(f"index/{split}", ".jsonl")],
        rejected=[f for split in SPLITS for f in every_class(f"index/{split}", ".rejected.tsv")],
    shell:
        "python -m vlcp index summarize --index {params.index:q} --rejected {params.rejected:q}"
        " --classes-out {output.classes:q} --rejected-out {output.rejected:q} > {log:q} 2>&1"

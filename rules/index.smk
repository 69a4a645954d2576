# Stage 1: the image index per split and class, and the files rejected with reasons;
# a job per class or per part of classes_per_job classes (see rules/parts.smk).


include: "functions/index.smk"


INDEX_OUT = class_files(index=("index/{split}", ".jsonl"), rejected=("index/{split}", ".rejected.tsv"))


rule index:
    input:
        folder=class_folders,
        label_table=label_table_input,
    output:
        **INDEX_OUT.output(),
    log:
        class_log("index/{split}"),
    benchmark:
        benchmark("index", "split", CLASS)
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("index")
    resources:
        **rule_resources("index", per_class=True),
    params:
        **INDEX_OUT.paths,
        root=DATA_ROOT,
        label_table=DATASET["label_table"],
        classes=job_classes,
        labels=label_overrides,
        part=part_option,
        extensions=DATASET["image_extensions"],
        max_image_pixels=DATASET["max_image_pixels"],
        min_image_side=DATASET["min_image_side"],
    shell:
        "python -m vlcp index scan --root {params.root:q} --split {wildcards.split} --class {params.classes:q}"
        " --label-table {params.label_table:q} --label {params.labels}"
        " --extensions {params.extensions} --max-image-pixels {params.max_image_pixels}"
        " --min-image-side {params.min_image_side}"
        " --index {params.index:q} --rejected {params.rejected:q} {params.part} > {log:q} 2>&1"


rule split_index:
    input:
        lambda wildcards: all_class_inputs(f"index/{wildcards.split}", ".jsonl"),
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
        index=lambda wildcards: all_class_paths(f"index/{wildcards.split}", ".jsonl"),
    shell:
        "python -m vlcp index merge --index {params.index:q} --out {output:q} > {log:q} 2>&1"


rule index_summary:
    input:
        [f for split in SPLITS for f in all_class_inputs(f"index/{split}", ".jsonl")],
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
        index=[f for split in SPLITS for f in all_class_paths(f"index/{split}", ".jsonl")],
        rejected=[f for split in SPLITS for f in all_class_paths(f"index/{split}", ".rejected.tsv")],
    shell:
        "python -m vlcp index summarize --index {params.index:q} --rejected {params.rejected:q}"
        " --classes-out {output.classes:q} --rejected-out {output.rejected:q} > {log:q} 2>&1"

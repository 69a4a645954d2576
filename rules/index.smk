# Stage 1: the image index per split and class, and the files rejected with reasons.


rule index:
    input:
        folder=class_folder,
        label_table=label_table_input,
    output:
        index=f"{RESULTS}/index/{{split}}/{{cls}}.jsonl",
        rejected=f"{RESULTS}/index/{{split}}/{{cls}}.rejected.tsv",
    log:
        f"{LOGS}/index/{{split}}/{{cls}}.log",
    params:
        root=DATA_ROOT,
        label_table=DATASET["label_table"],
        label=label_override,
        extensions=DATASET["image_extensions"],
        max_image_pixels=DATASET["max_image_pixels"],
    resources:
        **rule_resources("default"),
    conda:
        "../envs/cpu.yaml"
    shell:
        "python -m vlcp index scan --root {params.root:q} --split {wildcards.split} --class {wildcards.cls:q}"
        " --label-table {params.label_table:q} --label={params.label:q}"
        " --extensions {params.extensions} --max-image-pixels {params.max_image_pixels}"
        " --index {output.index:q} --rejected {output.rejected:q} > {log:q} 2>&1"


rule index_summary:
    input:
        index=[f for split in SPLITS for f in index_files(split)],
        rejected=[f for split in SPLITS for f in index_files(split, "rejected.tsv")],
    output:
        classes=f"{RESULTS}/index/classes.tsv",
        rejected=f"{RESULTS}/index/rejected.tsv",
    log:
        f"{LOGS}/index/summary.log",
    resources:
        **rule_resources("default"),
    conda:
        "../envs/cpu.yaml"
    shell:
        "python -m vlcp index summarize --index {input.index:q} --rejected {input.rejected:q}"
        " --classes-out {output.classes:q} --rejected-out {output.rejected:q} > {log:q} 2>&1"

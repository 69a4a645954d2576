# Sharing: `snakemake export` packages every distilled set of the run as a Hugging Face imagefolder with
# metadata and a dataset card, results/<run>/export/<method>-ipc<N>-seed<S>/, and the run's captions as one
# JSON-lines file. Not part of the default target.


include: "functions/export.smk"


rule export:
    input:
        export_targets(),


rule export_set:
    input:
        manifest=wildcard_manifest,
        classes=f"{RESULTS}/index/classes.tsv",
        accuracy=f"{RESULTS}/accuracy.csv",
    output:
        directory(f"{RESULTS}/export/{{method}}-ipc{{ipc}}-seed{{seed}}"),
    log:
        f"{LOGS}/export/{{method}}-ipc{{ipc}}-seed{{seed}}.log",
    benchmark:
        benchmark("export_set", "method", "ipc", "seed")
    wildcard_constraints:
        method=OWN_METHODS,
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("export_set")
    resources:
        **rule_resources("export_set"),
    params:
        run=config["run"],
    shell:
        "python -m vlcp export set --manifest {input.manifest:q} --method {wildcards.method} --ipc {wildcards.ipc}"
        " --seed {wildcards.seed} --class-table {input.classes:q} --accuracy {input.accuracy:q} --run-name {params.run:q}"
        " --out {output:q} > {log:q} 2>&1"


rule export_captions:
    input:
        captions=every_part("captions"),
        classes=f"{RESULTS}/index/classes.tsv",
    output:
        f"{RESULTS}/export/captions.jsonl",
    log:
        f"{LOGS}/export/captions.log",
    benchmark:
        benchmark("export_captions")
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("export_captions")
    resources:
        **rule_resources("export_captions"),
    params:
        captions=every_class("captions", ".jsonl"),
    shell:
        "python -m vlcp export captions --captions {params.captions:q} --class-table {input.classes:q}"
        " --out {output:q} > {log:q} 2>&1"

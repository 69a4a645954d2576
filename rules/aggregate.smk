# Stage 9: the accuracy table, its summary in the paper's layout, a plot and an
# image grid per distilled set, all in `snakemake --report report.html`.


include: "functions/aggregate.smk"


rule aggregate:
    input:
        rows=accuracy_files(),
        rejected=f"{RESULTS}/index/rejected.tsv",
    output:
        accuracy=report(f"{RESULTS}/accuracy.csv", caption="../report/accuracy.rst", category="Accuracy"),
        summary=report(f"{RESULTS}/summary.csv", caption="../report/summary.rst", category="Accuracy"),
        markdown=report(f"{RESULTS}/summary.md", caption="../report/summary.rst", category="Accuracy"),
        plot=report(f"{RESULTS}/accuracy.png", caption="../report/plot.rst", category="Accuracy"),
        # the report's landing page opens on this table (report/workflow.rst)
        landing=f"{RESULTS}/summary-table.csv",
    log:
        f"{LOGS}/aggregate.log",
    benchmark:
        benchmark("aggregate")
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("aggregate")
    resources:
        **rule_resources("aggregate"),
    params:
        # a params value, so a new reference reruns the summary
        full_reference=fixed_param(json.dumps(config["evaluate"]["full_reference"], sort_keys=True)),
        paper=f"--paper-dataset {config['paper_dataset']}" if config["paper_dataset"] else "",
    shell:
        "python -m vlcp aggregate table --rows {input.rows:q} --rejected {input.rejected:q} --accuracy {output.accuracy:q}"
        " --summary {output.summary:q} --markdown {output.markdown:q} --plot {output.plot:q} --landing {output.landing:q}"
        " --full-reference {params.full_reference:q} {params.paper} > {log:q} 2>&1"


rule manifest:
    input:
        lambda wildcards: distilled_set(wildcards.method, wildcards.ipc, wildcards.seed),
    output:
        set_manifest("{method}", "{ipc}", "{seed}"),
    log:
        f"{LOGS}/manifest/{{method}}-ipc{{ipc}}-seed{{seed}}.log",
    benchmark:
        benchmark("manifest", "method", "ipc", "seed")
    wildcard_constraints:
        method=OWN_METHODS,
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("manifest")
    resources:
        **rule_resources("manifest"),
    params:
        folder=lambda wildcards: distilled_set(wildcards.method, wildcards.ipc, wildcards.seed),
        classes=CLASSES,
    shell:
        "python -m vlcp aggregate manifest --folder {params.folder:q} --classes {params.classes:q}"
        " --out {output:q} > {log:q} 2>&1"


# A distilled set made elsewhere (config `external`): its images checked where they are and listed.
rule external:
    input:
        lambda wildcards: EXTERNAL[wildcards.method][0],
    output:
        set_manifest("{method}", "{ipc}", "{seed}"),
    log:
        f"{LOGS}/external/{{method}}-ipc{{ipc}}-seed{{seed}}.log",
    benchmark:
        benchmark("external", "method", "ipc", "seed")
    wildcard_constraints:
        method=EXTERNAL_METHODS,
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("external")
    resources:
        **rule_resources("external"),
    params:
        classes=CLASSES,
        extensions=DATASET["image_extensions"],
        max_image_pixels=DATASET["max_image_pixels"],
    shell:
        "python -m vlcp external --name {wildcards.method:q} --folder {input:q} --classes {params.classes:q}"
        " --extensions {params.extensions:q} --max-image-pixels {params.max_image_pixels} --out {output:q} > {log:q} 2>&1"


rule grid:
    input:
        wildcard_manifest,
    output:
        report(
            f"{RESULTS}/report/grids/{{method}}-ipc{{ipc}}-seed{{seed}}.png",
            caption="../report/grid.rst",
            category="Distilled images",
            subcategory="{method}",
            labels={"method": "{method}", "IPC": "{ipc}", "seed": "{seed}"},
        ),
    log:
        f"{LOGS}/grid/{{method}}-ipc{{ipc}}-seed{{seed}}.log",
    benchmark:
        benchmark("grid", "method", "ipc", "seed")
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("grid")
    resources:
        **rule_resources("grid"),
    shell:
        "python -m vlcp aggregate grid --manifest {input:q} --out {output:q} > {log:q} 2>&1"


# What the run cost: every job's benchmark file, per rule, beside vlcp plan's estimate (vlcp.cost). It runs
# after every result, so every job it reports has finished; timings are not results (the determinism tests
# leave cost.* and benchmarks/ out).
rule cost:
    input:
        results(),
    output:
        csv=f"{RESULTS}/cost.csv",
        markdown=report(f"{RESULTS}/cost.md", caption="../report/cost.rst", category="Cost"),
    log:
        f"{LOGS}/cost.log",
    benchmark:
        benchmark("cost")
    conda:
        "../envs/cpu.yaml"
    threads: rule_threads("cost")
    resources:
        **rule_resources("cost"),
    params:
        benchmarks=BENCHMARKS,
        # a function of the input: not compared, so settings that change no result (execution,
        # resources) rerun nothing, this rule included
        config=lambda wildcards, input: json.dumps(config, sort_keys=True, default=str),
    shell:
        "python -m vlcp cost --benchmarks {params.benchmarks:q} --config {params.config:q}"
        " --csv {output.csv:q} --markdown {output.markdown:q} > {log:q} 2>&1"

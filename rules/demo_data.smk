# The embedded demo set, written from data that scikit-learn ships.

if DEMO:

    rule demo_data:
        output:
            directory(DATA_ROOT),
        log:
            f"{LOGS}/demo_data.log",
        benchmark:
            benchmark("demo_data")
        conda:
            "../envs/cpu.yaml"
        threads: rule_threads("demo_data")
        resources:
            **rule_resources("demo_data"),
        params:
            demo=config["demo"],
        shell:
            "python -m vlcp demo_data {output:q}"
            " --train-per-class {params.demo[train_per_class]}"
            " --val-per-class {params.demo[val_per_class]}"
            " --image-size {params.demo[image_size]}"
            " --seed {params.demo[seed]}"
            " > {log:q} 2>&1"

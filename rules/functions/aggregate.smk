# Helpers of rules/aggregate.smk.

import json


def distilled_sets():
    """(method, ipc, distillation seed) of every distilled set: the run's own, and each external set (its
    IPC, seed 0)."""
    return own_sets() + [(name, ipc, 0) for name, (_, ipc) in EXTERNAL.items()]


def evaluation_runs():
    """The sets every evaluation trains on: the distilled sets, and 'full' once, with IPC 'all'."""
    return distilled_sets() + ([("full", "all", config["seeds"][0])] if "full" in config["methods"] else [])


def accuracy_files():
    """Every evaluation run's row: each protocol's models on each set; soft labels only for distilled sets."""
    evaluate = config["evaluate"]
    return [
        f"{RESULTS}/eval/{p}/{m}/ipc{i}/seed{s}/{model}/eval{e}.csv"
        for p in evaluate["protocols"]
        for m, i, s in evaluation_runs()
        if not (p == "rded" and m == "full")
        for model in evaluate["models"]
        if model in names.PROTOCOL_MODELS[p]
        for e in evaluate["seeds"]
    ]


def report_grids():
    return [f"{RESULTS}/report/grids/{m}-ipc{i}-seed{s}.png" for m, i, s in distilled_sets()]


def contract_folders():
    """The per-class folders of VLCP's stages that a user reads, made by rule gather; the captions, and the
    clusters and each prompt strategy's text prototypes of every IPC and seed."""
    if "vlcp" not in config["methods"]:
        return []
    runs = [f"ipc{i}/seed{s}" for i in config["ipc"] for s in config["seeds"]]
    folders = ["clusters", *(PROTOTYPE_DIRS[s] for s in config["text_prototype"]["strategies"])]
    return [f"{RESULTS}/captions", *(f"{RESULTS}/{folder}/{run}" for folder in folders for run in runs)]


def results():
    """The class table, the rejected files, the accuracy table and its summary, an image grid per set, and
    the per-class folders a user reads."""
    return [
        f"{RESULTS}/index/classes.tsv",
        f"{RESULTS}/index/rejected.tsv",
        f"{RESULTS}/accuracy.csv",
        f"{RESULTS}/summary.md",
        *report_grids(),
        *contract_folders(),
    ]


def all_targets():
    """The default target: the results, and what the run cost to make them."""
    return [*results(), f"{RESULTS}/cost.md"]

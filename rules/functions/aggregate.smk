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


def results():
    """The class table, the rejected files, the accuracy table and its summary, and an image grid per set."""
    return [
        f"{RESULTS}/index/classes.tsv",
        f"{RESULTS}/index/rejected.tsv",
        f"{RESULTS}/accuracy.csv",
        f"{RESULTS}/summary.md",
        *report_grids(),
    ]


def all_targets():
    """The default target: the results, and what the run cost to make them."""
    return [*results(), f"{RESULTS}/cost.md"]

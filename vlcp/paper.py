"""The paper's published numbers, and whether a run reproduced them.

``vlcp/data/paper_numbers.csv`` holds every cell of the paper's Tables 1-5 (top-1 %, mean and std over
three trials), the baselines' columns included: table, dataset, protocol, model, method (vlcp's names:
``vlcp-prototype`` is the paper's method, DCS; ``vlcp-label``, ``vlcp-label+keywords`` and ``vlcp-gpt``
the prompt strategies L, L+FK and GGS of Table 5; ``random``, ``kcenter``, ``herding``, ``full``; the
other methods by their short names: ``dit``, ``dm``, ``idc-1``, ``glad``, ``minimax``, ``d4m``,
``sre2l``, ``rded``), IPC (``all`` for the whole train set), mean, std. Table 5's DCS row repeats
Table 2's "Ours"; Table 1 repeats the whole-set column at every IPC and the file holds it once.

A run says which of the paper's datasets it is with ``paper_dataset`` (the presets set it). Each row of
its summary (top-1 at the best epoch, the paper's number) with the same dataset, protocol, model,
method and IPC gets the paper's mean and std beside it, the difference, and a verdict: **reproduced**
when the difference is at most the two standard deviations added together (the run's, over its seeds,
and the paper's), else **not reproduced**. A single run has a std of 0, so it must come within the
paper's std.
"""

import functools
from importlib import resources

from vlcp import names

COLUMNS = ("table", "dataset", "protocol", "model", "method", "ipc", "mean", "std")
KEYS = ["protocol", "model", "method", "ipc"]
METRIC = "top1_best"
REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"


@functools.cache
def numbers():
    """Every cell of the paper's tables, a DataFrame of COLUMNS (IPC as text)."""
    import pandas as pd

    with resources.files("vlcp.data").joinpath("paper_numbers.csv").open() as handle:
        return pd.read_csv(handle, dtype={"ipc": str})


def datasets():
    return tuple(dict.fromkeys(numbers()["dataset"]))


def cells(dataset):
    """The paper's cells of one dataset; a cell in two tables (Table 5's DCS row is Table 2's) once,
    with the lower table number."""
    part = numbers()[numbers()["dataset"] == dataset]
    return part.sort_values("table").drop_duplicates(KEYS).reset_index(drop=True)


def verdict(difference, std, paper_std):
    return REPRODUCED if abs(difference) <= std + paper_std + 1e-9 else NOT_REPRODUCED


def compare(summary, dataset):
    """``summary`` (vlcp.aggregate.summarize's frame) with the columns paper_table, paper_mean, paper_std,
    paper_difference and paper_verdict, filled on its top1_best rows that match a cell of the paper for
    ``dataset`` (None: no dataset, the columns stay empty)."""
    out = summary.copy()
    for column in ("paper_table", "paper_mean", "paper_std", "paper_difference", "paper_verdict"):
        out[column] = None
    if not dataset:
        return out
    paper = cells(dataset).set_index(KEYS)
    for i, row in out.iterrows():
        key = (row["protocol"], row["model"], row["method"], str(row["ipc"]))
        if row["metric"] != METRIC or key not in paper.index:
            continue
        cell = paper.loc[key]
        difference = round(float(row["mean"]) - float(cell["mean"]), 2)
        out.loc[i, ["paper_table", "paper_mean", "paper_std", "paper_difference", "paper_verdict"]] = [
            int(cell["table"]),
            float(cell["mean"]),
            float(cell["std"]),
            difference,
            verdict(difference, float(row["std"]), float(cell["std"])),
        ]
    return out


def reachable(method):
    """Whether vlcp makes the sets of a method of the paper's tables (by a config's methods and prompt
    strategies): VLCP's prompt strategies, the real-image baselines and the whole train set."""
    return method in names.METHODS or method in {names.vlcp_method(s) for s in names.STRATEGIES}


def not_run(summary, dataset):
    """The paper's cells for ``dataset`` that vlcp can make (``reachable`` methods, with a model its
    protocol trains) and this run's summary has no row of: what a config could add."""
    if not dataset:
        return []
    ran = {tuple(map(str, key)) for key in summary[summary["metric"] == METRIC][KEYS].itertuples(index=False)}
    left = []
    for cell in cells(dataset).itertuples():
        trains = cell.model in names.PROTOCOL_MODELS.get(cell.protocol, ())
        if reachable(cell.method) and trains and (cell.protocol, cell.model, cell.method, cell.ipc) not in ran:
            left.append(cell)
    return left


# What a d4m row's verdict means: the paper's column and vlcp's sets come from different code.
D4M_NOTE = (
    "d4m: the paper's D4M numbers came from code the VLCP authors did not publish (D4M's repository ships "
    "ImageNet-1K scripts only); vlcp makes D4M's sets as D4M's own code makes them (docs/fidelity.md, "
    '"D4M\'s column"), so a verdict on them compares with numbers of another implementation.'
)


def markdown(summary, dataset):
    """The summary's section on the paper: a row per matched cell, then the cells a config could add."""
    if not dataset:
        return ""
    matched = summary[summary["paper_verdict"].notna()]
    lines = [
        f"### The paper's numbers ({dataset})",
        "",
        "Top-1 % at the best epoch beside the paper's cell of the same dataset, protocol, model, method and IPC. "
        "Reproduced: the difference is at most the run's std and the paper's std added together.",
        "",
    ]
    if len(matched):
        lines += [
            "| protocol | model | method | IPC | this run | paper (table) | difference | verdict |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in matched.itertuples():
            note = " (see the d4m note below)" if r.method == names.D4M else ""
            lines.append(
                f"| {r.protocol} | {r.model} | {r.method} | {r.ipc} | {r.mean:.1f} ± {r.std:.1f} | "
                f"{r.paper_mean:.1f} ± {r.paper_std:.1f} ({int(r.paper_table)}) | {r.paper_difference:+.1f} | "
                f"{r.paper_verdict}{note} |"
            )
        if (matched["method"] == names.D4M).any():
            lines += ["", D4M_NOTE]
    else:
        lines.append("No row of this run matches a cell of the paper.")
    left = not_run(summary, dataset)
    if left:
        lines += ["", f"Cells of the paper this run does not make ({len(left)}; a config can add them):", ""]
        lines += [
            f"- Table {c.table}: {c.protocol}, {c.model}, {c.method}, IPC {c.ipc}: {c.mean} ± {c.std}" for c in left
        ]
    return "\n".join(lines) + "\n"


def paper_tables():
    """Markdown of every table of the paper (docs/paper.md), from the same file."""
    frame = numbers()
    titles = {
        1: "ImageWoof, every model (Minimax protocol)",
        2: "ImageNette and ImageIDC, ResNetAP-10 (Minimax protocol)",
        3: "ImageNet-1K, ResNet-18 (RDED's soft-label protocol)",
        4: "CIFAR-10 and CIFAR-100, ResNet-18 with RDED's modified stem (RDED's soft-label protocol)",
        5: "Prompt strategies on ImageNette and ImageIDC, ResNetAP-10 (Minimax protocol)",
    }
    parts = []
    for table, part in frame.groupby("table", sort=True):
        methods = list(dict.fromkeys(part["method"]))
        lines = [f"## Table {table}: {titles[table]}", ""]
        lines += ["| dataset | model | IPC | " + " | ".join(methods) + " |", "|---|---|---|" + "---|" * len(methods)]
        rows = part.groupby(["dataset", "model", "ipc"], sort=False)
        for (dataset, model, ipc), group in rows:
            found = {r.method: f"{r.mean:.1f} ± {r.std:.1f}" for r in group.itertuples()}
            lines.append(f"| {dataset} | {model} | {ipc} | " + " | ".join(found.get(m, "—") for m in methods) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"

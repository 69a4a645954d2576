"""Stage 9, aggregate: every accuracy row, the mean ± std table in the paper's layout, a plot, image grids.

The summary groups the rows of each (protocol, method, IPC, model) over distillation and
evaluation seeds; std is the population standard deviation (numpy's default),
0 for a single run. The 'full' method (the whole real train set) has IPC 'all'. Each
row of a distilled set also gets DD-Ranking's scores (vlcp.scores), and each row that
matches a cell of the paper's tables the paper's number and a verdict (vlcp.paper).
"""

import argparse
import json
import sys
from pathlib import Path

from vlcp import contract, names, paper, scores
from vlcp.atomic import atomic_write
from vlcp.cli import run

METRICS = ("top1_best", "top1_last")
METRIC_TITLES = {
    "top1_best": "best test accuracy during training (the authors' number)",
    "top1_last": "test accuracy after the last epoch",
}


def ipc_key(ipc):
    """Sort IPCs numerically with 'all' last."""
    return (1, 0) if str(ipc) == "all" else (0, int(ipc))


def summarize(frame):
    """Mean, population std and run count of both metrics per (protocol, method, ipc, model), in a tidy frame."""
    long = frame.melt(id_vars=["protocol", "method", "ipc", "model"], value_vars=list(METRICS), var_name="metric")
    long["ipc"] = long["ipc"].astype(str)
    summary = (
        long.groupby(["protocol", "method", "ipc", "model", "metric"], sort=False)["value"]
        .agg(mean="mean", std=lambda v: v.std(ddof=0), runs="size")
        .reset_index()
    )
    summary[["mean", "std"]] = summary[["mean", "std"]].round(2)
    order = ["metric", "protocol", "model", "method", "ipc"]
    return summary.sort_values(
        order, key=lambda c: c.map(ipc_key) if c.name == "ipc" else c, kind="stable"
    ).reset_index(drop=True)


def markdown_table(summary, metric, protocol=None):
    """The paper's layout for one metric (and protocol, if given): a row per (model, method), a column per
    IPC, cells 'mean ± std'. Written by hand: pandas' ``to_markdown`` needs tabulate, not a dependency,
    for a table of five lines."""
    part = summary[summary["metric"] == metric]
    if protocol is not None:
        part = part[part["protocol"] == protocol]
    ipcs = sorted(part["ipc"].unique(), key=ipc_key)
    lines = ["| model | method | " + " | ".join(f"IPC {i}" for i in ipcs) + " |", "|---|---|" + "---|" * len(ipcs)]
    for (model, method), group in part.groupby(["model", "method"], sort=True):
        cells = {r.ipc: f"{r.mean:.1f} ± {r.std:.1f}" for r in group.itertuples()}
        lines.append(f"| {model} | {method} | " + " | ".join(cells.get(i, "—") for i in ipcs) + " |")
    return "\n".join(lines)


def landing_rows(summary, metric="top1_best"):
    """The report's first table: a row per (protocol, model, method), a column per IPC, cells 'mean ± std'
    and, where the paper has the cell, its number in brackets; last, how many training runs the row's cells
    average. A list of rows, the header first."""
    part = summary[summary["metric"] == metric]
    ipcs = sorted(part["ipc"].unique(), key=ipc_key)
    rows = [["protocol", "model", "method", *(f"IPC {i}" for i in ipcs), "runs"]]
    for (protocol, model, method), group in part.groupby(["protocol", "model", "method"], sort=True):
        cells = {}
        for r in group.itertuples():
            paper_mean = getattr(r, "paper_mean", None)
            known = paper_mean is not None and paper_mean == paper_mean
            cells[r.ipc] = f"{r.mean:.1f} ± {r.std:.1f}" + (
                f" (paper {paper_mean:.1f} ± {r.paper_std:.1f})" if known else ""
            )
        rows.append([protocol, model, method, *(cells.get(i, "—") for i in ipcs), run_count(group["runs"])])
    return rows


def run_count(runs):
    """'1 run', '9 runs' or '3 to 9 runs': how many training runs the cells of a table average."""
    low, high = int(runs.min()), int(runs.max())
    if low == high:
        return f"{low} run" if low == 1 else f"{low} runs"
    return f"{low} to {high} runs"


PROTOCOL_TITLES = {
    "minimax": "hard labels (the Minimax protocol)",
    "rded": "soft labels from a teacher (the RDED protocol)",
}


def scores_table(scored, metric="top1_best"):
    """DD-Ranking's scores of every distilled set, a row per (protocol, model, method, IPC)."""
    part = scored[(scored["metric"] == metric) & (scored["method"] != "full")]
    lines = ["| protocol | model | method | IPC | IOR | HLR | LRS |", "|---|---|---|---|---|---|---|"]
    for r in part.itertuples():
        cells = ["" if value != value else f"{value:.4f}" for value in (r.ior, r.hlr, r.lrs)]  # NaN: empty
        lines.append(f"| {r.protocol} | {r.model} | {r.method} | {r.ipc} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scores_notes(part):
    """What the HLR of the distilled rows ``part`` rests on: which network, and any reference 'full' accuracy."""
    notes = []
    if (part["protocol"] == scores.HARD_LABEL_PROTOCOL).any():
        notes.append(
            "HLR and LRS of a minimax row compare the set with the whole train set on the row's own "
            "network, as DD-Ranking does: comparable with its leaderboard."
        )
    if (part["protocol"] != scores.HARD_LABEL_PROTOCOL).any():
        notes.append(
            "HLR and LRS of a soft-label row take both hard-label accuracies from the Minimax protocol's "
            "network of that name (instance norm by default), not from the row's own network (rded: "
            "torchvision's batch-norm ResNet-18, a batch-norm ConvNet-6): "
            "not comparable with DD-Ranking's leaderboard, which "
            "uses one network for both. summary.csv: hlr_comparable."
        )
    references = part[part["full_source"].notna() & (part["full_source"] != scores.RUN)]
    for model, source in sorted(set(zip(references["model"], references["full_source"]))):
        notes.append(f"Acc(whole real train set) of {model} from evaluate.full_reference: {source}.")
    return " ".join(notes)


def short_sets(frame):
    """Lines naming each distilled set that holds fewer images than its IPC x classes (a class with fewer
    images than the IPC gives what it has), from the accuracy rows' train_images and classes."""
    if "classes" not in frame.columns:  # rows written before the column existed
        return []
    sets = frame[frame["ipc"].astype(str).str.isdigit()].drop_duplicates(["method", "ipc", "seed"])
    lines = []
    for r in sets.itertuples():
        if r.classes == r.classes and r.train_images < int(r.ipc) * int(r.classes):  # NaN: an older row
            lines.append(
                f"{r.method} at IPC {r.ipc}, seed {r.seed}: {r.train_images} images, not "
                f"{int(r.ipc) * int(r.classes)} ({r.ipc} x {int(r.classes)} classes)"
            )
    return lines


def rejected_note(rejected, listed_in="`index/rejected.tsv` beside this file"):
    """A line on the files the index stage rejected (``rejected``: (image, reason) pairs), or None;
    ``listed_in`` says where the list is."""
    if not rejected:
        return None
    splits = {}
    for image, _ in rejected:
        split = Path(image).parts[0] if Path(image).parts else "?"
        splits[split] = splits.get(split, 0) + 1
    per_split = ", ".join(f"{n} in {split}/" for split, n in sorted(splits.items()))
    return (
        f"The index stage rejected {len(rejected)} file(s) of the dataset ({per_split}): not images, corrupt, "
        f"too large or too small; {listed_in} lists each with its reason."
    )


def run_end(results):
    """What a finished run says last on the console: where its tables are, and the files the index left out."""
    results = Path(results)
    lines = [
        f"{results / name}: {what}"
        for name, what in (("summary.md", "the accuracy tables"), ("cost.md", "what the run cost"))
        if (results / name).is_file()
    ]
    rejected = results / "index" / "rejected.tsv"
    note = rejected_note(contract.read_rejected(rejected), f"`{rejected}`") if rejected.is_file() else None
    return "\n".join(lines + [note] if note else lines)


# The soft-label protocol tests as RDED does: after every 10th epoch of the last fifth of training, and after
# the last (vlcp/rded.py, is_test_epoch); a run of 50 epochs or fewer tests once, so its best is its last.
SOFT_LABEL_NOTE = (
    "The soft-label protocol tests as RDED does, after every 10th epoch of the last fifth of training and after "
    "the last one; a run of 50 epochs or fewer tests only after its last, so top1_best equals top1_last"
)


def soft_label_note(scored):
    part = scored[scored["protocol"] == "rded"]
    if part.empty:
        return ""
    best, last = part[part["metric"] == "top1_best"], part[part["metric"] == "top1_last"]
    keys = ["method", "ipc", "model"]
    both = best.merge(last, on=keys, suffixes=("_best", "_last"))
    same = not both.empty and (both["mean_best"] == both["mean_last"]).all()
    return f"\n{SOFT_LABEL_NOTE}" + (" (here in every cell)." if same else ".") + "\n"


def write_markdown(path, scored, missing=(), short=(), paper_dataset=None, rejected=None):
    parts = [paper.markdown(scored, paper_dataset)] if paper_dataset else []
    if rejected:
        parts.append(f"### Files left out\n\n{rejected}\n")
    if short:
        parts.append(
            "### Sets smaller than their IPC\n\nSome classes have fewer images than the IPC; these sets hold "
            "what there is (the cluster and select logs name the classes):\n"
            + "".join(f"\n- {line}" for line in short)
            + "\n"
        )
    for metric in METRICS:
        for protocol in sorted(scored["protocol"].unique()):
            runs = scored[(scored["metric"] == metric) & (scored["protocol"] == protocol)]["runs"]
            parts.append(
                f"### {metric}, {PROTOCOL_TITLES.get(protocol, protocol)}: {METRIC_TITLES[metric]}\n\n"
                f"Top-1 %, mean ± std over {run_count(runs)} (distillation seeds x evaluation seeds).\n\n"
                f"{markdown_table(scored, metric, protocol)}\n"
                + (soft_label_note(scored) if protocol == "rded" else "")
            )
    notes = "".join(f"\n- {m}" for m in missing)
    about = scores_notes(scored[scored["method"] != "full"])
    parts.append(
        "### DD-Ranking scores (from top1_best)\n\nIOR: improvement over random real images; HLR: hard-label "
        "recovery, what the set loses to the whole real train set with hard labels; LRS: label-robust score "
        "(NUS-HPC-AI-Lab/DD-Ranking). Fractions of 1, as DD-Ranking's documentation defines them (its code "
        "takes percentages).\n\n"
        f"{scores_table(scored)}\n"
        + (f"\n{about}\n" if about else "")
        + (f"\nEmpty cells need these runs:{notes}\n" if notes else "")
    )
    parts.append(
        "### What the run cost\n\n`cost.md` beside this file: per rule, the jobs' wall time, CPU time and peak "
        "memory as measured, beside `vlcp plan`'s estimate (a file of its own: timings differ between runs, "
        "and this summary does not).\n"
    )
    with atomic_write(path) as handle:
        handle.write("\n".join(parts))


def plot(path, summary, metric="top1_best"):
    """Accuracy against IPC, a line per method (and protocol) and a panel per model; 'full' as a dashed level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    part = summary[summary["metric"] == metric]
    models = sorted(part["model"].unique())
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 3.6), squeeze=False)
    for ax, model in zip(axes[0], models):
        several = part["protocol"].nunique() > 1
        for (method, protocol), group in part[part["model"] == model].groupby(["method", "protocol"]):
            label = f"{method}, {protocol}" if several else method
            numeric = group[group["ipc"] != "all"].sort_values("ipc", key=lambda c: c.map(ipc_key))
            if len(numeric):
                x = numeric["ipc"].astype(int)
                ax.errorbar(x, numeric["mean"], yerr=numeric["std"], marker="o", capsize=3, label=label)
            full = group[group["ipc"] == "all"]
            if len(full):
                ax.axhline(full["mean"].iloc[0], linestyle="--", color="gray", label=f"{label} (all images)")
        ax.set_xscale("log")
        ticks = sorted({int(i) for i in part["ipc"] if i != "all"})
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("images per class (IPC)")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(model)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path, "wb", overwrite=True) as handle:
        fig.savefig(handle, dpi=120, format="png")
    plt.close(fig)


def image_grid(manifest, out, columns=10, cell=64):
    """A PNG with a row per class of the first ``columns`` images of the distilled set ``manifest`` lists.
    Drawn with PIL rather than ``torchvision.utils.make_grid``, which has no room for the class names."""
    from PIL import Image, ImageDraw

    label_width = 110
    found = {}
    for cls, path in contract.read_manifest(manifest):
        found.setdefault(cls, []).append(path)
    found = {cls: paths[:columns] for cls, paths in found.items()}
    columns = max(1, max(len(files) for files in found.values()))
    grid = Image.new("RGB", (label_width + columns * cell, len(found) * cell), "white")
    draw = ImageDraw.Draw(grid)
    for row, (cls, paths) in enumerate(found.items()):
        draw.text((4, row * cell + cell // 2 - 6), cls[:16], fill="black")
        for col, path in enumerate(paths):
            with Image.open(path) as img:
                grid.paste(img.convert("RGB").resize((cell, cell)), (label_width + col * cell, row * cell))
    with atomic_write(out, "wb", overwrite=True) as handle:
        grid.save(handle, format="PNG")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    table = commands.add_parser("table", help="accuracy.csv, summary.csv, summary.md and the plot")
    table.add_argument("--rows", nargs="+", required=True, type=Path, help="per-run accuracy CSVs")
    table.add_argument("--accuracy", required=True, type=Path)
    table.add_argument("--summary", required=True, type=Path)
    table.add_argument("--markdown", required=True, type=Path)
    table.add_argument("--plot", required=True, type=Path)
    table.add_argument("--landing", type=Path, help="the report's first table (CSV): top-1 per method and IPC")
    table.add_argument(
        "--full-reference",
        type=json.loads,
        default=None,
        help="config evaluate.full_reference as JSON: model -> {top1, source}, for models without 'full'",
    )
    table.add_argument("--rejected", type=Path, help="the index stage's rejected files (index/rejected.tsv)")
    table.add_argument(
        "--paper-dataset", choices=names.PAPER_DATASETS, help="which of the paper's datasets the run is (paper_dataset)"
    )
    grid = commands.add_parser("grid", help="image grid of one distilled set")
    grid.add_argument("--manifest", required=True, type=Path, help="the set's manifest (<set>.manifest.tsv)")
    grid.add_argument("--out", required=True, type=Path)
    manifest = commands.add_parser("manifest", help="the list of a distilled set's images, with their checksums")
    manifest.add_argument("--folder", required=True, type=Path)
    manifest.add_argument("--classes", nargs="+", required=True)
    manifest.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    if args.command == "manifest":
        rows = contract.write_manifest(args.folder, args.classes, args.out)
        print(f"{args.folder}: {len(rows)} images of {len(args.classes)} classes", file=sys.stderr)
        return
    if args.command == "grid":
        image_grid(args.manifest, args.out)
        return
    import pandas as pd

    frame = pd.concat([contract.read_accuracy(p) for p in args.rows], ignore_index=True)
    frame = frame.sort_values(
        ["protocol", "method", "ipc", "seed", "model", "eval_seed"],
        key=lambda c: c.map(ipc_key) if c.name == "ipc" else c,
    )
    contract.write_accuracy(args.accuracy, frame.to_dict("records"))
    summary, missing = scores.add_scores(summarize(frame), args.full_reference)
    summary = paper.compare(summary, args.paper_dataset)
    with atomic_write(args.summary) as handle:
        summary.to_csv(handle, index=False)
    rejected = rejected_note(contract.read_rejected(args.rejected)) if args.rejected else None
    write_markdown(args.markdown, summary, missing, short_sets(frame), args.paper_dataset, rejected)
    plot(args.plot, summary)
    if args.landing:
        import csv

        with atomic_write(args.landing) as handle:
            csv.writer(handle, lineterminator="\n").writerows(landing_rows(summary))
    print(markdown_table(summary, "top1_best"), file=sys.stderr)


if __name__ == "__main__":
    run(main)

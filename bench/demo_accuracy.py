r"""The demo's accuracies, measured: the one place they are written down.

    ./run.sh demo
    .venv/bin/python bench/demo_accuracy.py              # prints the table of results/demo/summary.csv
    .venv/bin/python bench/demo_accuracy.py --write      # and puts it in bench/RESULTS.md
    printf 'run: demo-strength-0.7\nsynthesize: {num_inference_steps: 10, strength: 0.7}\n' > strength.yaml
    ./run.sh demo --configfile config/demo.yaml strength.yaml
    .venv/bin/python bench/demo_accuracy.py --summary results/demo-strength-0.7/summary.csv \
        --label "synthesize.strength 0.7" --write
    ./run.sh demo --configfile config/demo.yaml config/demo-beyond.yaml      # D4M and the best of 4 candidates
    .venv/bin/python bench/demo_accuracy.py --label "config/demo-beyond.yaml" --write

The demo trains on CPU floats, so the figures depend on the kind of CPU (and on a GPU differ again);
the section says which machine made them. It replaces the section of the same machine and label.
"""

import argparse
import platform
import sys
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HEADING = "## The demo's accuracies"


def cpu_name():
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def demo_table(summary):
    """Top-1 (best epoch) per protocol, method and IPC of a run's summary.csv, a markdown table."""
    import pandas as pd

    frame = pd.read_csv(summary)
    frame = frame[frame["metric"] == "top1_best"].sort_values(["protocol", "method", "model", "ipc"])
    lines = ["| protocol | method | model | IPC | top-1 % | runs |", "|---|---|---|---|---|---|"]
    for r in frame.itertuples():
        lines.append(f"| {r.protocol} | {r.method} | {r.model} | {r.ipc} | {r.mean:.1f} | {r.runs} |")
    return "\n".join(lines)


def section(table, key, when):
    return (
        f"{HEADING} ({key}, {when})\n\n`config/demo.yaml` as committed, but for what the heading names; "
        f"written by `bench/demo_accuracy.py`.\n\n{table}\n"
    )


def replace_section(text, new, key):
    """``text`` with the demo section of ``key`` (machine and label) replaced by ``new``, or ``new`` appended."""
    head, *sections = text.rstrip("\n").split("\n## ")
    sections = ["## " + s.rstrip("\n") for s in sections]
    kept = [s for s in sections if not s.startswith(f"{HEADING} ({key}, 20")]
    return "\n\n".join([head.rstrip("\n"), *kept, new.rstrip("\n")]) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, default=REPO / "results" / "demo" / "summary.csv")
    parser.add_argument("--label", help="what this run changes from config/demo.yaml, for the heading")
    parser.add_argument("--write", action="store_true", help="put the table in bench/RESULTS.md")
    args = parser.parse_args(argv)
    if not args.summary.is_file():
        sys.exit(f"error: {args.summary} is not there; run the demo first (./run.sh demo)")
    key = cpu_name() + (f", {args.label}" if args.label else "")
    new = section(demo_table(args.summary), key, date.today().isoformat())
    print(new)
    if args.write:
        results = REPO / "bench" / "RESULTS.md"
        results.write_text(replace_section(results.read_text(), new, key))


if __name__ == "__main__":
    main()

r"""The README's CPU trial on a dataset that is not digits, measured: config/cpu-trial.yaml on top of a
config of four lines, on six classes of coloured shapes (vlcp.shapes), from scratch.

    .venv/bin/python bench/cpu_trial.py WORKDIR            # builds the shapes, runs the trial, prints the table
    .venv/bin/python bench/cpu_trial.py WORKDIR --write    # and puts it in bench/RESULTS.md

A second call on the same WORKDIR runs only what is missing (nothing, once finished) and prints the
table again; the wall time written is that of the call that ran the jobs.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HEADING = "## A CPU trial on coloured shapes"
CONFIG = "run: shapes\ndataset: {root: data/shapes}\nipc: [1, 5]\nmethods: [vlcp, random]\n"


def run_trial(workdir):
    """Run the trial in ``workdir``; the seconds Snakemake took."""
    from vlcp.shapes import write_shapes

    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / "data" / "shapes").exists():
        write_shapes(workdir / "data" / "shapes")
    (workdir / "mine.yaml").write_text(CONFIG)
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    command += ["--cores", "2", "--configfile", str(workdir / "mine.yaml"), str(REPO / "config" / "cpu-trial.yaml")]
    started = time.time()
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # the stages' python: this one
    subprocess.run(command, check=True, env=dict(os.environ, HF_HUB_OFFLINE="1", PATH=path))
    return time.time() - started


def table(summary):
    import pandas as pd

    frame = pd.read_csv(summary, dtype={"ipc": str})
    frame = frame[frame["metric"] == "top1_best"].sort_values(["protocol", "method", "ipc"])
    lines = ["| protocol | method | IPC | top-1 % | runs |", "|---|---|---|---|---|"]
    lines += [f"| {r.protocol} | {r.method} | {r.ipc} | {r.mean:.1f} | {r.runs} |" for r in frame.itertuples()]
    return "\n".join(lines)


def section(text, seconds, machine, pretrain_min=None, note=""):
    took = f"{seconds / 60:.1f} min of Snakemake time" if seconds is not None else "time not measured"
    if pretrain_min is not None:
        took += f", the tiny_pretrain job {pretrain_min:.1f} min of it"
    return (
        f"{HEADING}\n\n"
        f"Written by `bench/cpu_trial.py` on {machine}, {date.today().isoformat()}: the README's CPU trial, "
        "`config/cpu-trial.yaml` on top of a config of four lines, "
        f"`{'; '.join(CONFIG.strip().splitlines())}` "
        "(six classes of 40 train and 20 val shapes, 64 px; `python -m vlcp.shapes`), "
        f"from scratch on 2 cores, {took}. The tiny diffusion model was pretrained on the run's own train "
        "images (models.tiny_pretrained: train); chance is 16.7 %. One run; the numbers say that the "
        "workflow runs on a dataset of its user's, not what VLCP scores with the real models."
        + (f" {note}" if note else "")
        + "\n\n"
        f"{text}\n"
    )


def main(argv=None):
    from demo_accuracy import cpu_name
    from gpu import replace_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--write", action="store_true", help="put the table in bench/RESULTS.md")
    parser.add_argument("--note", default="", help="a sentence on the conditions, added to the section")
    args = parser.parse_args(argv)
    record = args.workdir / "cpu-trial-seconds.json"
    seconds = run_trial(args.workdir)
    if not record.exists() or seconds > 60:  # a call that ran the jobs, not one that found them done
        record.write_text(json.dumps({"seconds": round(seconds)}))
    seconds = json.loads(record.read_text())["seconds"]
    text = table(args.workdir / "results" / "shapes" / "summary.csv")
    print(text)
    if args.write:
        results = REPO / "bench" / "RESULTS.md"
        import pandas as pd

        cost = pd.read_csv(args.workdir / "results" / "shapes" / "cost.csv")
        pretrain = cost[cost["rule"] == "tiny_pretrain"]["wall_min"].sum()
        new = section(text, seconds, cpu_name(), pretrain, args.note)
        results.write_text(replace_section(results.read_text(), new, HEADING))
        print(f"written to {results}")


if __name__ == "__main__":
    main()

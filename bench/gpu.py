"""On a GPU machine: run the GPU suite (`pytest -m gpu`) and the full-size benchmarks, and write the
GPU section of bench/RESULTS.md with the device's name.

    python bench/gpu.py                     # the whole suite, then bench/run.py --full
    python bench/gpu.py --suite -k caption  # part of the suite only (pytest -k), e.g. within a time limit
    python bench/gpu.py --bench             # the benchmarks only

Each GPU-suite test's figures are appended to bench/gpu-figures.jsonl (with device and date) and the
benchmarks' output is kept in bench/gpu-bench.log, so runs of parts add up; the GPU section of
RESULTS.md (from its "## GPU" heading to the end) is rendered from both after every run.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
REPO = HERE.parent
HEADING = "## GPU"
FIGURES = HERE / "gpu-figures.jsonl"
BENCH_LOG = HERE / "gpu-bench.log"


def run_suite(pytest_args):
    """Run the GPU suite; append its figures to FIGURES; return pytest's summary line."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as handle:
        report = Path(handle.name)
    env = dict(os.environ, VLCP_GPU_REPORT=str(report), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-v", "-s", *pytest_args],
                            cwd=REPO, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    (HERE / "gpu-suite.log").write_text(output)
    summary = next((ln.strip("= ") for ln in reversed(output.splitlines()) if " passed" in ln or " failed" in ln), "no tests ran")
    today = datetime.date.today().isoformat()
    rows = [{**json.loads(line), "device": gpu_name(), "date": today} for line in report.read_text().splitlines() if line.strip()]
    outcome = {"stage": "suite", "date": today, "pytest": " ".join(["-m gpu", *pytest_args]), "summary": summary,
               "exit": result.returncode, "device": gpu_name()}
    with FIGURES.open("a") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in [*rows, outcome])
    print(output[-3000:], flush=True)
    return summary


def run_bench():
    result = subprocess.run([sys.executable, str(HERE / "run.py"), "--full"], cwd=REPO, capture_output=True, text=True)
    lines = [ln for ln in (result.stdout + result.stderr).splitlines() if "%|" not in ln and "warn" not in ln.lower()]
    header = f"{gpu_name()}, {datetime.date.today().isoformat()}: python bench/run.py --full, exit code {result.returncode}"
    BENCH_LOG.write_text("\n".join([header, *lines]) + "\n")
    print("\n".join(lines[-80:]), flush=True)


def gpu_name():
    import torch

    props = torch.cuda.get_device_properties(0)
    return f"{torch.cuda.get_device_name(0)} ({props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda})"


def render():
    """The GPU section: the suite's figures by device, then the latest benchmark output."""
    rows = [json.loads(line) for line in FIGURES.read_text().splitlines()] if FIGURES.exists() else []
    section = [HEADING, "", "Written by `python bench/gpu.py` from bench/gpu-figures.jsonl and bench/gpu-bench.log.", ""]
    for device in dict.fromkeys(row["device"] for row in rows):
        mine = [r for r in rows if r["device"] == device]
        section += [f"### GPU suite on {device}", ""]
        section += [f"- {r['date']}: `pytest {r['pytest']}`: {r['summary']} (exit {r['exit']})" for r in mine if r["stage"] == "suite"]
        figures = [r for r in mine if r["stage"] != "suite"]
        if figures:
            keys = ["stage"] + sorted({k for r in figures for k in r} - {"stage", "device"})
            section += ["", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            section += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in figures]
        section.append("")
    if BENCH_LOG.exists():
        text = BENCH_LOG.read_text().splitlines()
        section += [f"### Benchmarks: {text[0]}", "", "```", *text[1:], "```", ""]
    return "\n".join(section)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="store_true", help="run the GPU suite only")
    parser.add_argument("--bench", action="store_true", help="run the benchmarks only")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args, pytest_args = parser.parse_known_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU here: bench/gpu.py records GPU figures; run it on a GPU machine")
    both = not (args.suite or args.bench)
    if args.suite or both:
        run_suite(pytest_args)
    if args.bench or both:
        run_bench()
    text = args.out.read_text()
    kept = text[: text.index(HEADING)] if HEADING in text else text.rstrip() + "\n\n"
    args.out.write_text(kept + render())
    print(f"GPU section of {args.out} written", flush=True)


if __name__ == "__main__":
    main()

"""On a GPU machine: run the GPU suite (`pytest -m gpu`) and every benchmark at full size, then write
the GPU section of bench/RESULTS.md with the device's name.

    python bench/gpu.py [--skip-suite] [--skip-bench] [--out bench/RESULTS.md]

The section is replaced whole (everything from its "## GPU" heading to the end of the file), so a
rerun on another card gives that card's figures; keep earlier ones by committing them first.
Each part's full output is written beside the report as bench/gpu-*.log.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
REPO = HERE.parent
HEADING = "## GPU"


def run_logged(cmd, log, env=None):
    """Run ``cmd`` with its output in ``log``; return (exit code, seconds, output)."""
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    log.write_text(output)
    return result.returncode, time.perf_counter() - start, output


def device_line():
    import torch

    props = torch.cuda.get_device_properties(0)
    return (f"{torch.cuda.get_device_name(0)}, {props.total_memory / 2**30:.0f} GiB; torch {torch.__version__}, "
            f"CUDA {torch.version.cuda}; {platform.node()}")


def suite_section(rows, code, seconds, output):
    lines = [f"`pytest -m gpu`: exit code {code}, {seconds / 60:.1f} min. "
             + next((ln.strip("= ") for ln in reversed(output.splitlines()) if " passed" in ln or " failed" in ln), ""), ""]
    if rows:
        keys = ["stage"] + sorted({k for row in rows for k in row} - {"stage", "device"})
        lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in rows]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-suite", action="store_true")
    parser.add_argument("--skip-bench", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU here: bench/gpu.py records GPU figures; run it on a GPU machine")
    today = datetime.date.today().isoformat()
    section = [HEADING, "", f"### {torch.cuda.get_device_name(0)}, {today}", "", device_line(), ""]
    if not args.skip_suite:
        with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as handle:
            report = Path(handle.name)
        env = dict(os.environ, VLCP_GPU_REPORT=str(report), HF_HUB_OFFLINE="1")
        code, seconds, output = run_logged([sys.executable, "-m", "pytest", "-m", "gpu", "-v", "-s"], HERE / "gpu-suite.log", env)
        rows = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
        lines = suite_section(rows, code, seconds, output)
        section += ["GPU suite (`pytest -m gpu`, full-size architectures with random weights):", "", *lines, ""]
        print("\n".join(lines), flush=True)
    if not args.skip_bench:
        code, seconds, output = run_logged([sys.executable, str(HERE / "run.py"), "--full"], HERE / "gpu-bench.log")
        section += [f"Benchmarks (`python bench/run.py --full`): exit code {code}, {seconds / 60:.1f} min.", "", "```",
                    *[ln for ln in output.strip().splitlines() if "%|" not in ln and "warn" not in ln.lower()], "```", ""]
        print(output[-5000:], flush=True)
    text = args.out.read_text()
    kept = text[: text.index(HEADING)] if HEADING in text else text.rstrip() + "\n\n"
    args.out.write_text(kept + "\n".join(section))
    print(f"GPU section of {args.out} written", flush=True)


if __name__ == "__main__":
    main()

"""On a GPU machine: run the GPU suite (`pytest -m gpu`) and the full-size benchmarks, and write the
GPU section of bench/RESULTS.md with the device's name.

It runs from the checkout, without installing vlcp: a bare GPU node that has its own torch,
torchvision, transformers and accelerate needs only the missing pure-Python packages, as wheels in a
local folder (--wheels DIR; no internet needed).

    python bench/gpu.py --list                          # the parts, each meant to finish in under 8 minutes
    python bench/gpu.py --part suite-caption --wheels .whl
    python bench/gpu.py --part bench-synthesize         # one part; run them one after another
    python bench/gpu.py                                 # everything (suite, then every benchmark)
    python bench/gpu.py --suite -k caption              # any part of the suite (pytest -k)

Each GPU-suite test's figures are appended to bench/gpu-figures.jsonl (with device and date) and each
benchmark's output is kept in bench/gpu-bench-<name>.log, so runs of parts add up; the GPU section of
RESULTS.md (from its "## GPU" heading to the end) is rendered from them after every run.
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

# The parts: a slice of the suite (pytest -k) or one benchmark script, each sized to finish in under 8
# minutes on one GPU (the suite's models are built at full size with random weights).
SUITE_PARTS = {
    "suite-caption": "caption",
    "suite-encode": "encode",
    "suite-finetune": "finetune",
    "suite-synthesize": "synthesize",
    "suite-evaluate": "evaluate",
}
BENCH_PARTS = {
    f"bench-{Path(s).stem}": s
    for s in (
        "caption.py",
        "synthesize.py",
        "finetune.py",
        "evaluate.py",
        "soft_label.py",
        "whole_split_memory.py",
        "finetune_memory.py",
        "dag.py",
        "prototypes.py",
    )
}
FULL_CAPABLE = {"soft_label.py", "caption.py", "synthesize.py", "finetune.py"}
# Modules the suite and the benchmarks import beside torch, torchvision, transformers and accelerate,
# by the distribution that provides them.
NEEDED = {
    "diffusers": "diffusers",
    "safetensors": "safetensors",
    "sklearn": "scikit-learn",
    "pandas": "pandas",
    "PIL": "pillow",
    "tqdm": "tqdm",
    "yaml": "pyyaml",
    "jsonschema": "jsonschema",
    "pytest": "pytest",
    "matplotlib": "matplotlib",
}


def child_env(site=None):
    """The environment of the suite's and benchmarks' processes: the checkout (and the wheels' folder)
    on the path, nothing fetched from a hub."""
    paths = (
        [str(REPO)]
        + ([str(site)] if site else [])
        + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), HF_HUB_OFFLINE="1")


def install_missing(wheels, site):
    """Install, from the wheel folder ``wheels`` into ``site``, the distributions of the modules in NEEDED
    that this Python cannot import; the machine's own packages are never shadowed."""
    import importlib.util

    missing = sorted({dist for module, dist in NEEDED.items() if importlib.util.find_spec(module) is None})
    if not missing:
        return []
    installed = already_installed()
    files = [
        w for w in sorted(Path(wheels).glob("*.whl")) if w.name.split("-")[0].lower().replace("_", "-") not in installed
    ]
    if not files:
        sys.exit(f"missing {', '.join(missing)}, and no wheel to install from in {wheels}")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            "--no-compile",
            "--target",
            str(site),
            *map(str, files),
        ],
        check=True,
    )
    sys.path.insert(0, str(site))
    still = [module for module in NEEDED if importlib.util.find_spec(module) is None]
    if still:
        sys.exit(f"still missing after installing the wheels of {wheels}: {', '.join(still)}")
    return missing


def already_installed():
    from importlib import metadata

    return {d.metadata["Name"].lower().replace("_", "-") for d in metadata.distributions() if d.metadata["Name"]}


def run_suite(pytest_args, env):
    """Run the GPU suite; append its figures to FIGURES; return pytest's summary line."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as handle:
        report = Path(handle.name)
    env = dict(env, VLCP_GPU_REPORT=str(report))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "gpu", "-v", "-s", *pytest_args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    output = result.stdout + result.stderr
    (HERE / "gpu-suite.log").write_text(output)
    summary = next(
        (ln.strip("= ") for ln in reversed(output.splitlines()) if " passed" in ln or " failed" in ln), "no tests ran"
    )
    today = datetime.date.today().isoformat()
    rows = [
        {**json.loads(line), "device": gpu_name(), "date": today}
        for line in report.read_text().splitlines()
        if line.strip()
    ]
    outcome = {
        "stage": "suite",
        "date": today,
        "pytest": " ".join(["-m gpu", *pytest_args]),
        "summary": summary,
        "exit": result.returncode,
        "device": gpu_name(),
    }
    with FIGURES.open("a") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in [*rows, outcome])
    print(output[-3000:], flush=True)
    return summary


def run_bench(script, env):
    """Run one benchmark script (full size where it can be); keep its output in bench/gpu-bench-<name>.log."""
    extra = ["--full"] if script in FULL_CAPABLE else []
    result = subprocess.run(
        [sys.executable, str(HERE / script), *extra], cwd=REPO, env=env, capture_output=True, text=True
    )
    lines = [ln for ln in (result.stdout + result.stderr).splitlines() if "%|" not in ln and "warn" not in ln.lower()]
    header = (
        f"{gpu_name()}, {datetime.date.today().isoformat()}: python bench/{script} {' '.join(extra)}, "
        f"exit code {result.returncode}"
    )
    (HERE / f"gpu-bench-{Path(script).stem}.log").write_text("\n".join([header, *lines]) + "\n")
    print("\n".join(lines[-80:]), flush=True)


def gpu_name():
    import torch

    props = torch.cuda.get_device_properties(0)
    memory = f"{props.total_memory / 2**30:.0f} GiB"
    return f"{torch.cuda.get_device_name(0)} ({memory}, torch {torch.__version__}, CUDA {torch.version.cuda})"


def render():
    """The GPU section: the suite's figures by device, then the latest benchmark output."""
    rows = [json.loads(line) for line in FIGURES.read_text().splitlines()] if FIGURES.exists() else []
    section = [
        HEADING,
        "",
        "Written by `python bench/gpu.py` from bench/gpu-figures.jsonl and bench/gpu-bench.log.",
        "",
    ]
    for device in dict.fromkeys(row["device"] for row in rows):
        mine = [r for r in rows if r["device"] == device]
        section += [f"### GPU suite on {device}", ""]
        section += [
            f"- {r['date']}: `pytest {r['pytest']}`: {r['summary']} (exit {r['exit']})"
            for r in mine
            if r["stage"] == "suite"
        ]
        figures = [r for r in mine if r["stage"] != "suite"]
        if figures:
            keys = ["stage"] + sorted({k for r in figures for k in r} - {"stage", "device"})
            section += ["", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            section += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in figures]
        section.append("")
    for log in sorted(HERE.glob("gpu-bench-*.log")):
        text = log.read_text().splitlines()
        section += [f"### Benchmark: {text[0]}", "", "```", *text[1:], "```", ""]
    return "\n".join(section)


def replace_gpu_section(text, section):
    """``text`` with its GPU section (from the "## GPU" heading to the next "## " heading) replaced by
    ``section``, or ``section`` appended."""
    if f"\n{HEADING}\n" not in f"\n{text}":
        return text.rstrip("\n") + "\n\n" + section
    start = f"\n{text}".index(f"\n{HEADING}\n")
    following = text.find("\n## ", start + len(HEADING))
    rest = text[following + 1 :] if following != -1 else ""
    return text[:start] + section.rstrip("\n") + "\n" + ("\n" + rest if rest else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list the parts and stop")
    parser.add_argument(
        "--part", action="append", choices=[*SUITE_PARTS, *BENCH_PARTS], help="run this part (repeatable)"
    )
    parser.add_argument("--suite", action="store_true", help="run the GPU suite only (with any pytest arguments)")
    parser.add_argument("--bench", action="store_true", help="run every benchmark only")
    parser.add_argument("--wheels", type=Path, help="folder of wheels for the packages this machine lacks")
    parser.add_argument(
        "--site",
        type=Path,
        default=Path(tempfile.gettempdir()) / "vlcp-site",
        help="where the wheels are installed (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args, pytest_args = parser.parse_known_args()
    if args.list:
        for name, words in SUITE_PARTS.items():
            print(f"{name}: pytest -m gpu -k {words}")
        for name, script in BENCH_PARTS.items():
            print(f"{name}: python bench/{script}{' --full' if script in FULL_CAPABLE else ''}")
        return
    installed = install_missing(args.wheels, args.site) if args.wheels else []
    if installed:
        print(f"installed from {args.wheels} into {args.site}: {', '.join(installed)}", flush=True)
    env = child_env(args.site if installed else None)
    import torch

    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU here: bench/gpu.py records GPU figures; run it on a GPU machine")
    parts = args.part or []
    if not (parts or args.suite or args.bench):
        parts = [*SUITE_PARTS, *BENCH_PARTS]
    if args.suite:
        run_suite(pytest_args, env)
    for part in parts:
        print(f"\n== {part} ==", flush=True)
        if part in SUITE_PARTS:
            run_suite(["-k", SUITE_PARTS[part], *pytest_args], env)
        else:
            run_bench(BENCH_PARTS[part], env)
    if args.bench:
        for script in BENCH_PARTS.values():
            run_bench(script, env)
    args.out.write_text(replace_gpu_section(args.out.read_text(), render()))
    print(f"GPU section of {args.out} written", flush=True)


if __name__ == "__main__":
    main()

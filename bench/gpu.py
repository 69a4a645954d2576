"""The GPU suite in one command on a GPU node, within its allocation; and its figures into bench/RESULTS.md.

On the node, from the checkout, without installing vlcp (bench/README.md, "The GPU suite", says how to
fetch the wheel folder):

    python3 bench/gpu.py --wheels .whl --figures $OUT/gpu-figures.jsonl

1. installs the wheels of the project's pure-Python needs the node lacks or has at other versions
   (diffusers, transformers, jsonschema and its dependencies: bench/gpu-wheels.txt, at the versions of
   constraints.txt) into a folder that goes ahead of the node's own packages;
2. runs the GPU suite (tests/test_gpu.py) in one pytest session, cheapest parts first, streaming its
   output; each figure is appended to the figures file the moment it is measured, and a part that
   would end past the budget is not started;
3. ends with a summary: the device, the versions the suite ran with, and the figures.

Back here, ``python bench/gpu.py --record FIGURES.jsonl`` adds those figures to bench/gpu-figures.jsonl
and writes the GPU section of bench/RESULTS.md from it.

``--device cpu`` rehearses the same command on a machine without a GPU, at a small resolution and with
LLaVA's language model cut to 2 layers (the fullsize test tier runs it so, in an environment set up
like the node's).
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
REPO = HERE.parent
HEADING = "## GPU"
RECORD = HERE / "gpu-figures.jsonl"
WHEELS = HERE / "gpu-wheels.txt"
# What the summary reports the versions of, as the suite's processes import them.
PACKAGES = ("torch", "torchvision", "transformers", "diffusers", "accelerate", "jsonschema", "huggingface_hub")
# Seconds kept back from the budget for the summary after the suite stops.
SUMMARY_SECONDS = 15


def install_wheels(wheels, site):
    """Install every wheel of ``wheels`` into ``site`` (no index, no dependency resolution: the folder holds
    exactly what is needed); return their file names."""
    files = sorted(Path(wheels).glob("*.whl"))
    if not files:
        sys.exit(f"no wheels in {wheels}: fetch them with the pip download line of bench/README.md")
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
    command += ["--no-cache-dir", "--upgrade", "--target", str(site), *map(str, files)]
    subprocess.run(command, check=True)
    return [f.name for f in files]


def child_env(site, device, resolution, llava_layers, models, figures, deadline, run_id):
    """The suite's environment: the wheels' folder, then the checkout, ahead of the machine's packages."""
    paths = [str(site)] if site else []
    paths += [str(REPO), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(paths),
        PYTHONUNBUFFERED="1",
        HF_HUB_OFFLINE="1",
        VLCP_GPU_DEVICE=device,
        VLCP_GPU_RESOLUTION=str(resolution),
        VLCP_GPU_REPORT=str(figures),
        VLCP_GPU_DEADLINE=str(deadline),
        VLCP_GPU_RUN_ID=run_id,
    )
    if llava_layers is not None:
        env["VLCP_GPU_LLAVA_LAYERS"] = str(llava_layers)
    if models:
        env["VLCP_FULLSIZE_MODELS"] = str(models)
    return env


VERSIONS = f"""
import importlib, json, platform
found = {{"python": platform.python_version()}}
for name in {PACKAGES!r}:
    try:
        module = importlib.import_module(name)
        found[name] = getattr(module, "__version__", "?") + " (" + module.__file__.rsplit("/" + name, 1)[0] + ")"
    except ImportError:
        found[name] = "missing"
import torch
found["cuda"] = torch.version.cuda
if torch.cuda.is_available():
    props = torch.cuda.get_device_properties(0)
    found["gpu"] = f"{{torch.cuda.get_device_name(0)}} ({{props.total_memory / 2**30:.0f}} GiB)"
else:
    found["gpu"] = "none"
print(json.dumps(found))
"""


def versions(env):
    """The versions (and locations) the suite's processes import, read by a process of that environment."""
    result = subprocess.run([sys.executable, "-c", VERSIONS], env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def run_suite(env, deadline, pytest_args):
    """One pytest session of the GPU suite, its output streamed; stopped at the deadline. Its exit code."""
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "tests/test_gpu.py", "-v", "-s", "-p", "no:cacheprovider"]
    process = subprocess.Popen([*command, *pytest_args], cwd=REPO, env=env)
    try:
        return process.wait(timeout=max(deadline - time.time(), 1))
    except subprocess.TimeoutExpired:
        process.kill()
        print(f"\nthe suite was stopped at the budget's end; figures so far are in {env['VLCP_GPU_REPORT']}")
        return "stopped at the budget"


def read_rows(path):
    if not Path(path).exists():
        return []
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line torn by a kill
    return rows


def figures_table(rows):
    """A markdown table of the figures rows (every key that any row has, in a stable order)."""
    figures = [r for r in rows if r.get("stage") not in ("run", "outcome")]
    if not figures:
        return ["(no figures)"]
    skip = {"run_id", "device", "date"}
    keys = ["stage"] + sorted({k for r in figures for k in r} - skip - {"stage"})
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in figures]
    return lines


def summary(rows):
    """The summary of one run's rows: device, versions, outcome and figures."""
    run = next((r for r in rows if r.get("stage") == "run"), {})
    outcome = next((r for r in rows if r.get("stage") == "outcome"), {})
    lines = [
        f"### {run.get('gpu', '?')}, {run.get('date', '?')}: `{run.get('command', '')}`",
        "",
        f"Python {run.get('python', '?')}, CUDA {run.get('cuda', '?')}; "
        + ", ".join(f"{name} {str(run.get(name, '?')).split(' (')[0]}" for name in PACKAGES)
        + f". Suite: {outcome.get('pytest', 'no outcome recorded')}, {outcome.get('seconds', '?')} s"
        + f" of a {outcome.get('budget', '?')} s budget.",
        "",
        *figures_table(rows),
        "",
    ]
    return "\n".join(lines)


def render(rows):
    """The GPU section of RESULTS.md: every recorded run, newest first."""
    runs = {}
    for row in rows:
        runs.setdefault(row.get("run_id"), []).append(row)
    section = [
        HEADING,
        "",
        "Written by `python bench/gpu.py --record FIGURES.jsonl` from bench/gpu-figures.jsonl: each run of "
        "`python3 bench/gpu.py` on a GPU node (bench/README.md), newest first; a part not started for lack "
        "of time says so.",
        "",
    ]
    gpu_runs = [r for r in runs.values() if any(x.get("stage") == "run" and x.get("gpu") != "none" for x in r)]
    if not gpu_runs:
        section += ["No GPU run has been recorded yet.", ""]
    for run_rows in reversed(gpu_runs):
        section.append(summary(run_rows))
    return "\n".join(section)


def replace_section(text, section, heading=HEADING):
    """``text`` with its section under ``heading`` (to the next "## " heading) replaced by ``section``, or
    ``section`` appended."""
    if f"\n{heading}\n" not in f"\n{text}":
        return text.rstrip("\n") + "\n\n" + section
    start = f"\n{text}".index(f"\n{heading}\n")
    following = text.find("\n## ", start + len(heading))
    rest = text[following + 1 :] if following != -1 else ""
    return text[:start] + section.rstrip("\n") + "\n" + ("\n" + rest if rest else "")


def record(figures, out):
    """Add the rows of ``figures`` to bench/gpu-figures.jsonl (once) and rewrite RESULTS.md's GPU section."""
    known = {json.dumps(r, sort_keys=True) for r in read_rows(RECORD)}
    new = [r for r in read_rows(figures) if json.dumps(r, sort_keys=True) not in known]
    with RECORD.open("a") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in new)
    out.write_text(replace_section(out.read_text(), render(read_rows(RECORD))))
    print(f"{len(new)} new row(s) in {RECORD}; GPU section of {out} written")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, help="folder of the wheels to put ahead of the machine's packages")
    parser.add_argument("--site", type=Path, help="where the wheels are installed (default: a new temporary folder)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--resolution", type=int, help="Stable Diffusion's image side (default 512; 64 on cpu)")
    parser.add_argument("--llava-layers", type=int, help="LLaVA's language-model depth (default: 32; 2 on cpu)")
    parser.add_argument("--models", type=Path, help="folder to save the full-size models in, or find them in")
    parser.add_argument("--figures", type=Path, help="the JSON-lines file of figures (default: a new one in bench/)")
    parser.add_argument("--budget", type=float, default=540, help="seconds for the whole command (default 540)")
    parser.add_argument("--record", type=Path, metavar="FIGURES", help="record a node's figures file here, and stop")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="the results file --record writes")
    args, pytest_args = parser.parse_known_args()
    if args.record:
        record(args.record, args.out)
        return
    start = time.time()
    deadline = start + args.budget - SUMMARY_SECONDS
    resolution = args.resolution or (512 if args.device == "cuda" else 64)
    layers = args.llava_layers if args.llava_layers is not None else (None if args.device == "cuda" else 2)
    stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    figures = args.figures or HERE / f"gpu-figures-{stamp}.jsonl"
    site = None
    if args.wheels:
        site = args.site or Path(tempfile.mkdtemp(prefix="vlcp-site-"))
        installed = install_wheels(args.wheels, site)
        print(f"installed {len(installed)} wheels into {site}, ahead of this machine's packages", flush=True)
    env = child_env(site, args.device, resolution, layers, args.models, figures, deadline, stamp)
    found = versions(env)
    if args.device == "cuda" and found["gpu"] == "none":
        sys.exit("no CUDA GPU here: run on a GPU node, or rehearse with --device cpu")
    run_row = {
        "stage": "run",
        "run_id": stamp,
        "date": datetime.date.today().isoformat(),
        "command": " ".join(["python3 bench/gpu.py", *sys.argv[1:]]),
        **found,
    }
    with figures.open("a") as handle:
        handle.write(json.dumps(run_row) + "\n")
    print(json.dumps(run_row, indent=1), flush=True)
    code = run_suite(env, deadline, pytest_args)
    outcome = {
        "stage": "outcome",
        "run_id": stamp,
        "pytest": f"exit {code}" if isinstance(code, int) else code,
        "seconds": round(time.time() - start),
        "budget": round(args.budget),
    }
    with figures.open("a") as handle:
        handle.write(json.dumps(outcome) + "\n")
    rows = [r for r in read_rows(figures) if r.get("run_id") == stamp]
    print("\n" + summary(rows), flush=True)
    print(f"figures: {figures}; record them here with `python bench/gpu.py --record {figures.name}`")
    sys.exit(0 if code == 0 else 1)


if __name__ == "__main__":
    main()

"""Dry-run cost of the DAG: `snakemake -n` wall time for the ImageNet-1K preset and how it grows with classes.

Builds empty ImageFolders of 10, 100 and 1000 ImageNet classes (a dry run only lists folders),
then times `snakemake -n --configfile config/presets/imagenet1k.yaml` on each, as the preset
runs (classes_per_job 50) and with a job per class (classes_per_job 1), the baseline. Target:
at most 10 s for 1000 classes on a 2-core machine. Where slurm-client is installed but no controller
answers, the SLURM plugin adds a 10 s wait to every start: set VLCP_SLURM_BASE to a running
test cluster (slurm/local-cluster/start.sh) to measure inside its namespace.

    python bench/dag.py [--classes 10 100 1000] [--repeats 1]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vlcp.labels import imagenet_labels  # noqa: E402  (the checkout, installed or not)
from vlcp.plan import snakemake_command  # noqa: E402

TARGET_S = 10.0


def fake_imagefolder(root, wnids):
    for split in ("train", "val"):
        for wnid in wnids:
            (root / split / wnid).mkdir(parents=True, exist_ok=True)
            (root / split / wnid / "0.JPEG").touch()  # a plan checks that no class folder is empty


def dry_run(workdir, config, per_job=None):
    base = os.environ.get("VLCP_SLURM_BASE")  # inside a cluster's namespace the SLURM plugin starts fast
    prefix = [f"{base}/in-cluster.sh"] if base else []
    preset = str(REPO / "config/presets/imagenet1k.yaml")
    cmd = [*prefix, *snakemake_command(workdir, "-n", "--quiet", "rules", "--configfile", preset, str(config))]
    if per_job:
        cmd += ["--config", f"classes_per_job={per_job}"]
    start = time.perf_counter()
    # the preset names hub ids; with HF_HUB_OFFLINE set the plan would ask for them in the local cache
    result = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="0"))
    elapsed = time.perf_counter() - start
    if result.returncode:
        raise SystemExit((result.stdout + result.stderr)[-2000:])
    total = re.search(r"^total\s+(\d+)$", result.stdout, re.M)  # the first of the two job tables
    jobs = int(total.group(1)) if total else 0
    return elapsed, jobs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", nargs="+", type=int, default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-baseline", action="store_true", help="skip the job-per-class dry runs")
    args = parser.parse_args()
    wnids = sorted(imagenet_labels())
    print(
        f"{'classes':>8} {'jobs':>7} {'dry-run s':>10} {'per-class jobs':>15} {'dry-run s':>10} {'speed-up':>9}"
        f" {'vs 10 s':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.classes:
            work = Path(tmp) / f"n{n}"
            fake_imagefolder(work / "data", wnids[:n])
            config = work / "override.yaml"
            # the preset's teacher file must exist before any job starts (its weights are not read by a plan)
            teacher = work / "teacher.pth"
            teacher.write_bytes(b"")
            override = {
                "dataset": {"root": str(work / "data"), "classes": wnids[:n]},
                "evaluate": {"teacher": str(teacher)},
            }
            config.write_text(yaml.safe_dump(override))
            grouped = best_of(args.repeats, work, config)
            baseline = (0.0, 0) if args.no_baseline else best_of(args.repeats, work, config, per_job=1)
            ratio = f"{baseline[0] / grouped[0]:.2f}x" if baseline[1] else "-"
            print(
                f"{n:>8} {grouped[1]:>7} {grouped[0]:>10.2f} {baseline[1]:>15} {baseline[0]:>10.2f} {ratio:>9}"
                f" {grouped[0] / TARGET_S:>7.2f}x",
                flush=True,
            )


def best_of(repeats, workdir, config, per_job=None):
    """(fastest wall time, job count) of ``repeats`` dry runs."""
    runs = [dry_run(workdir, config, per_job) for _ in range(repeats)]
    return min(t for t, _ in runs), runs[0][1]


if __name__ == "__main__":
    main()

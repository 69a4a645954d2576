"""What a run will cost, before it starts: its jobs per rule and an estimate of the GPU hours.

``python -m vlcp plan [--configfile FILE ...]`` reads the config as the workflow
does, asks Snakemake's own dry run which jobs are still to do, counts the
dataset's images on disk, and prices each GPU job with the model costs of
``vlcp.sizing`` (full-size models on the meta device, assumed H100
throughputs): estimates to decide with, not measurements. On a CPU the same
work takes one to three orders of magnitude longer.
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from vlcp import demo_data, names
from vlcp.checks import check_run
from vlcp.config import read_run_config
from vlcp.errors import VlcpError
from vlcp.sizing import REPO, evaluation_estimate, format_minutes, size_preset, soft_label_estimate, teacher_estimate


class PlanError(VlcpError):
    """The dry run behind the plan failed; the message carries Snakemake's words."""


def dry_run_error(output):
    """What a failed dry run says: the message of the workflow's own error (the lines after Snakemake's
    'WorkflowError in file ...', up to its traceback), else every line but Snakemake's notes."""
    lines = output.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if re.match(r"\w+Error in file ", line)), None)
    if start is not None:
        message = []
        for line in lines[start:]:
            if line.startswith("  File ") or not line.strip():
                break
            message.append(line)
        return " ".join(message)
    notes = ("Using workflow specific profile", "Config file ")
    return "the dry run failed: " + "\n".join(l for l in lines if l.strip() and not l.startswith(notes))[-2000:]


def snakemake_command(workdir, *args):
    """The command line that runs this repository's workflow in ``workdir`` with this Python's Snakemake."""
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *args]


def planned_jobs(configfiles, workdir="."):
    """(rule, {wildcard: value}) of every job a dry run of the workflow lists, in its order."""
    cmd = snakemake_command(workdir, "-n")
    if configfiles:
        cmd += ["--configfile", *map(str, configfiles)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    if result.returncode != 0:
        raise PlanError(dry_run_error(result.stdout + result.stderr))
    return parse_dry_run(result.stdout)


def parse_dry_run(stdout):
    """(rule, {wildcard: value}) of every job a dry run's output lists, in its order."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", stdout):
        match = re.match(r"(?:local)?rule (\w+):", block)
        if match:
            found = re.search(r"^\s+wildcards: (.*)$", block, re.M)
            pairs = [item.split("=", 1) for item in found.group(1).split(", ")] if found else []
            jobs.append((match.group(1), dict(pairs)))
    return jobs


def dataset_counts(config):
    """(classes, train images, val images) of the run's dataset: the demo's settings, or the files on disk."""
    dataset = config["dataset"]
    if dataset["source"] == "demo":
        classes = len(dataset["classes"] or demo_data.CLASSES)
        return classes, classes * config["demo"]["train_per_class"], classes * config["demo"]["val_per_class"]
    root = Path(dataset["root"])
    classes = dataset["classes"] or sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    suffixes = tuple(s.lower() for s in dataset["image_extensions"])

    def count(split):
        return sum(
            1
            for cls in classes
            for _, _, files in os.walk(root / split / cls)
            for f in files
            if f.lower().endswith(suffixes)
        )

    return len(classes), count("train"), count("val")


def job_minutes(config, counts, jobs):
    """The estimated GPU minutes of each GPU job among ``jobs`` ((rule, wildcards) pairs), priced by
    vlcp.sizing, in their order: a list of (rule, wildcards, minutes). A GPU job is a job of a rule whose
    resources ask for a GPU (vlcp.names.gpu_rules) and that vlcp.sizing has a model of."""
    sizes = size_preset(config, counts)
    per_job = config["classes_per_job"]
    largest = max(config["ipc"])
    synthesis = {"synthesize": config["synthesize"], "d4m": config["d4m"]["synthesize"]}
    steps = {name: settings["num_inference_steps"] * settings["strength"] for name, settings in synthesis.items()}
    d4m_steps = steps["d4m"] / steps["synthesize"]
    gpu = names.gpu_rules(config["resources"])
    priced = []
    for rule, wildcards in jobs:
        if rule not in gpu:
            continue
        if rule in ("caption", "encode"):
            minutes = sizes[rule]["minutes"] * per_job
        elif rule in ("synthesize", "d4m_synthesize"):
            # sized for the largest IPC and candidate count; D4M's images at its own schedule's steps
            candidates = names.candidate_count(wildcards.get("candidates", "")) if rule == "synthesize" else 1
            share = int(wildcards["ipc"]) / largest * candidates / max(config["synthesize"]["candidates"])
            minutes = sizes["synthesize"]["minutes"] * per_job * share * (d4m_steps if rule == "d4m_synthesize" else 1)
        elif rule == "finetune":
            minutes = sizes[rule]["minutes"]
        elif rule == "teacher":
            minutes = teacher_estimate(config, counts)["minutes"]
        elif rule == "soft_label":
            minutes = soft_label_estimate(config, counts, wildcards["model"], wildcards["ipc"])["minutes"]
        elif rule == "evaluate":
            minutes = evaluation_estimate(config, counts, wildcards["model"], wildcards["ipc"])["minutes"]
        else:
            continue  # a rule that asks for a GPU only because the config gives it one: no estimate
        priced.append((rule, wildcards, minutes))
    return priced


def gpu_minutes(config, counts, jobs):
    """{rule: (jobs, minutes)} of the GPU rules among ``jobs``, each job priced by vlcp.sizing."""
    return rule_totals(job_minutes(config, counts, jobs))


def rule_totals(priced):
    """{rule: (jobs, minutes)} of ``job_minutes``' list."""
    totals = {}
    for rule, _, minutes in priced:
        count, total = totals.get(rule, (0, 0.0))
        totals[rule] = (count + 1, total + minutes)
    return totals


def job_model(config, rule, wildcards):
    """The model that sets a GPU job's cost: the captioner, the diffusion model, or the network trained."""
    if rule == "caption":
        return config["models"]["captioner"]
    if rule in ("encode", "finetune", "synthesize", "d4m_synthesize"):
        return config["models"]["diffusion"]
    return wildcards.get("model") or wildcards.get("architecture")


def calibration(cost_csv):
    """{(rule, model): measured / estimated} from a finished run's cost.csv (vlcp.cost): per GPU rule and
    model, the jobs' measured wall time over their estimates."""
    import pandas as pd

    cost = pd.read_csv(cost_csv)
    gpu = cost[cost["estimate_min"].notna() & (cost["estimate_min"] > 0)]
    sums = gpu.groupby(["rule", "model"])[["wall_min", "estimate_min"]].sum()
    return {key: row.wall_min / row.estimate_min for key, row in sums.iterrows()}


def calibrated_minutes(config, priced, factors):
    """{rule: (minutes, jobs calibrated, jobs)}: the estimates of ``job_minutes``' list scaled by ``factors``
    (``calibration``) where a job's rule and model have a factor; other jobs keep their estimate."""
    totals = {}
    for rule, wildcards, minutes in priced:
        factor = factors.get((rule, job_model(config, rule, wildcards)))
        total, hits, count = totals.get(rule, (0.0, 0, 0))
        totals[rule] = (total + minutes * (factor or 1.0), hits + (factor is not None), count + 1)
    return totals


def report(config, counts, jobs, factors=None, calibrated_from=None):
    """The plan as text: what the run is, the jobs per rule, and the GPU hours of the GPU rules (with a
    column calibrated on a finished run's measured times when ``factors`` are given)."""
    classes, train, val = counts
    per_rule = {}
    for rule, _ in jobs:
        per_rule[rule] = per_rule.get(rule, 0) + 1
    priced = job_minutes(config, counts, jobs)
    minutes = rule_totals(priced)
    calibrated = calibrated_minutes(config, priced, factors) if factors is not None else None
    lines = [
        f"run {config['run']!r}: {classes} classes, {train} train and {val} val files (checked by the index stage); "
        f"IPC {config['ipc']}, "
        f"seeds {config['seeds']}, methods {config['methods']}, models {config['evaluate']['models']}",
        "",
        "| rule | jobs to run | GPU time (estimate, H100) |" + (" calibrated |" if calibrated is not None else ""),
        "|---|---|---|" + ("---|" if calibrated is not None else ""),
    ]
    for rule, count in per_rule.items():
        gpu = format_minutes(minutes[rule][1]) if rule in minutes else "-"
        line = f"| {rule} | {count} | {gpu} |"
        if calibrated is not None:
            total, hits, jobs_of_rule = calibrated.get(rule, (None, 0, 0))
            line += f" {format_minutes(total)} ({hits} of {jobs_of_rule} jobs) |" if total is not None else " - |"
        lines.append(line)
    total = sum(m for _, m in minutes.values())
    last = f"| total | {len(jobs)} | {format_minutes(total)} ({total / 60:.1f} GPU hours) |"
    if calibrated is not None:
        scaled = sum(m for m, _, _ in calibrated.values())
        last += f" {format_minutes(scaled)} ({scaled / 60:.1f} GPU hours) |"
    lines += [
        last,
        "",
        "Estimates from vlcp/sizing.py (assumed H100 throughputs); an A100 takes about twice as long, "
        "a CPU one to three orders of magnitude longer.",
    ]
    if calibrated is not None:
        lines.append(
            f"Calibrated on {calibrated_from}: each job's estimate times its rule's measured / estimated time in "
            "that run, where the run's jobs of the rule had the same model (captioner, diffusion model or "
            "network); the other jobs keep their estimate. The factor carries the other run's GPU and models."
        )
    if per_rule.get("finetune"):
        disk = size_preset(config, counts)["finetune"]["disk_gib"]
        lines.append(
            f"Each fine-tune job needs up to {disk:.1f} GiB of disk at once under {config['results_dir']}/"
            f"{config['run']}/: its resumable checkpoints in work/finetune/<job>/ (at most "
            f"max(execution.finetune.checkpoints_total_limit, 2) at a time, removed when the job ends) and the "
            "fine-tuned pipeline in finetune/<job>/ (full-size models; vlcp/sizing.py, finetune_disk)."
        )
    tiny = [role for role in ("diffusion", "captioner") if config["models"][role] == "tiny"]
    if tiny:
        lines.append(
            f"They price the full-size models; this run's {' and '.join(tiny)} model(s) are tiny, "
            "so its GPU rules cost far less."
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", nargs="*", default=[], type=Path, help="config files, as given to snakemake")
    parser.add_argument("--directory", type=Path, default=Path("."), help="the run's working directory")
    parser.add_argument(
        "--calibrate",
        type=Path,
        metavar="RUN",
        help="a finished run's folder (results/<run>): scale the estimates by its measured times (its cost.csv)",
    )
    args = parser.parse_args(argv)
    factors = None
    if args.calibrate:
        cost = args.calibrate / "cost.csv"
        if not cost.is_file():
            raise PlanError(f"{cost} is not there: --calibrate takes a finished run's folder, results/<run>")
        factors = calibration(cost)
    config = read_run_config(args.configfile, REPO)
    files, previous = [p.resolve() for p in args.configfile], os.getcwd()
    os.chdir(args.directory)  # relative paths of the config (dataset, teacher) are the run's
    try:
        # the workflow's own checks, all problems at once: their lines are the dry run's
        checked = check_run(config, REPO / "config" / "schema.yaml", default_run=not files)
        jobs = planned_jobs(files)
        counts = dataset_counts(config)
    finally:
        os.chdir(previous)
    for warning in checked.warnings:
        print(warning)
    print(report(config, counts, jobs, factors, args.calibrate))


if __name__ == "__main__":
    main()

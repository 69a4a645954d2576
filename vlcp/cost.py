"""What a run cost: every job's measured wall time, CPU time and peak memory, per rule, and for each GPU
rule the measured time beside `vlcp plan`'s estimate of the same jobs.

Every rule of the workflow writes Snakemake's benchmark file, ``results/<run>/benchmarks/<rule>/<job>.tsv``,
where ``<job>`` is the job's wildcards as ``name=value`` pairs joined by commas (``job`` for a rule without
wildcards). ``cost.csv`` holds a row per job: rule, job, model (what sets a GPU job's cost: the captioner,
the diffusion model or the network trained; see ``vlcp.plan.job_model``), wall_min, cpu_min, max_rss_mb
and, for the GPU rules, estimate_min (vlcp.sizing's price of the job, assumed H100 throughputs).
``cost.md`` is the table per rule. ``vlcp plan --calibrate results/<run>`` reads ``cost.csv``.

Timings differ between two runs of the same config, so these files are not results: the reruns and
determinism tests leave them out.
"""

import argparse
import json
import sys
from pathlib import Path

from vlcp.atomic import atomic_write
from vlcp.cli import run

NO_WILDCARDS = "job"


def job_wildcards(name):
    """{wildcard: value} of a benchmark file's stem ``a=1,b=x``; {} for ``job``."""
    if name == NO_WILDCARDS:
        return {}
    return dict(item.split("=", 1) for item in name.split(","))


def read_benchmarks(folder):
    """A row per benchmark file under ``folder`` (<rule>/<job>.tsv, the job's name holding a / where a
    wildcard's value does, as rule gather's folder): rule, job, wildcards, wall and CPU minutes, peak resident
    memory in MB (Snakemake writes NA where it could not measure)."""
    import pandas as pd

    rows = []
    for path in sorted(Path(folder).glob("*/**/*.tsv")):
        rule, *job = path.relative_to(folder).with_suffix("").parts
        table = pd.read_csv(path, sep="\t", na_values=["NA", "-"])
        if table.empty:
            continue
        last = table.iloc[-1]  # repeated benchmarks: the last measurement
        rows.append(
            {
                "rule": rule,
                "job": "/".join(job),
                "wildcards": job_wildcards("/".join(job)),
                "wall_min": round(float(last["s"]) / 60, 4),
                "cpu_min": round(float(last["cpu_time"]) / 60, 4) if last["cpu_time"] == last["cpu_time"] else None,
                "max_rss_mb": float(last["max_rss"]) if last["max_rss"] == last["max_rss"] else None,
                "end": path.stat().st_mtime,  # Snakemake writes the file as the job ends
            }
        )
    return rows


def busy_minutes(rows):
    """Minutes in which at least one of the jobs ran: the union of their spans (each ends at its benchmark
    file's time and lasted its wall time), so jobs side by side count once and gaps between runs not at all."""
    spans = sorted((r["end"] - r["wall_min"] * 60, r["end"]) for r in rows if "end" in r)
    total, reach = 0.0, None
    for start, end in spans:
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total / 60


def cost_rows(rows, config, counts):
    """``rows`` with the model and the estimate of each GPU job (vlcp.plan)."""
    from vlcp.names import gpu_rules
    from vlcp.plan import job_minutes, job_model

    def key(rule, wildcards):
        return rule, tuple(sorted(wildcards.items()))

    on_gpu = gpu_rules(config["resources"])
    gpu = [(r["rule"], r["wildcards"]) for r in rows if r["rule"] in on_gpu]
    estimates = {key(rule, wildcards): minutes for rule, wildcards, minutes in job_minutes(config, counts, gpu)}
    out = []
    for r in rows:
        is_gpu = r["rule"] in on_gpu
        estimate = estimates.get(key(r["rule"], r["wildcards"]))
        out.append(
            {
                "rule": r["rule"],
                "job": r["job"],
                "model": job_model(config, r["rule"], r["wildcards"]) if is_gpu else None,
                "wall_min": r["wall_min"],
                "cpu_min": r["cpu_min"],
                "max_rss_mb": r["max_rss_mb"],
                "estimate_min": round(estimate, 4) if estimate is not None else None,
            }
        )
    return out


def minutes_text(minutes):
    from vlcp.sizing import format_minutes

    return format_minutes(minutes) if minutes == minutes else "-"


# An estimate under a second is no base for a ratio.
SHORTEST_ESTIMATE_MIN = 1 / 60


def ratio_text(group, wall, estimate):
    """measured / estimate of a rule's jobs, or '-' where it would mean nothing: no estimate, one under a
    second, or jobs of the tiny models (the estimate prices the full-size ones)."""
    if estimate != estimate or estimate < SHORTEST_ESTIMATE_MIN or (group["model"] == "tiny").any():
        return "-"
    return f"{wall / estimate:.2f}"


def markdown(frame, elapsed=None):
    """A row per rule: jobs, wall time, CPU time, peak memory; the GPU rules' estimate beside their time.
    ``elapsed``: the minutes in which some job ran (``busy_minutes``), said beside the sum."""
    lines = [
        "### What the run cost\n",
        "Measured by Snakemake's benchmark of every job (`benchmarks/`); the estimate is `vlcp plan`'s price of "
        "the same jobs (vlcp.sizing: full-size models, assumed H100 throughputs), so a run on other hardware "
        "or with tiny models measures something else. `vlcp plan --calibrate` scales a planned run's estimates "
        "by the ratio. No ratio is given where the estimate is under a second or the jobs ran a tiny model.\n",
        "| rule | jobs | wall time | CPU time | peak memory | GPU estimate | measured / estimate |",
        "|---|---|---|---|---|---|---|",
    ]
    for rule, group in frame.groupby("rule", sort=False):
        wall, cpu = group["wall_min"].sum(), group["cpu_min"].sum(min_count=1)
        peak = group["max_rss_mb"].max()
        estimate = group["estimate_min"].sum(min_count=1)
        lines.append(
            f"| {rule} | {len(group)} | {minutes_text(wall)} | {minutes_text(cpu)} | "
            f"{'-' if peak != peak else f'{peak:.0f} MB'} | {minutes_text(estimate)} | "
            f"{ratio_text(group, wall, estimate)} |"
        )
    total = frame["wall_min"].sum()
    lines.append(f"| total | {len(frame)} | {minutes_text(total)} | {minutes_text(frame['cpu_min'].sum())} | | | |")
    if elapsed is not None:
        lines.append(
            f"\nThe total's wall time is the sum over jobs, which run side by side. The run's jobs ran in "
            f"{minutes_text(elapsed)} of elapsed time (the union of their spans, from the benchmark files' times: "
            "jobs side by side count once, the time between two invocations not at all)."
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", required=True, type=Path, help="the run's benchmarks/ folder")
    parser.add_argument("--config", required=True, type=json.loads, help="the run's config as JSON")
    parser.add_argument("--csv", required=True, type=Path)
    parser.add_argument("--markdown", required=True, type=Path)
    args = parser.parse_args(argv)
    import pandas as pd

    from vlcp.plan import dataset_counts

    measured = read_benchmarks(args.benchmarks)
    rows = cost_rows(measured, args.config, dataset_counts(args.config))
    frame = pd.DataFrame(
        rows, columns=["rule", "job", "model", "wall_min", "cpu_min", "max_rss_mb", "estimate_min"]
    ).astype({"wall_min": float, "cpu_min": float, "max_rss_mb": float, "estimate_min": float})
    with atomic_write(args.csv) as handle:
        frame.to_csv(handle, index=False)
    with atomic_write(args.markdown) as handle:
        handle.write(markdown(frame, busy_minutes(measured)))
    print(f"{len(frame)} jobs, {frame['wall_min'].sum():.1f} min of wall time in all", file=sys.stderr)


if __name__ == "__main__":
    run(main)

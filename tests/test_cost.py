"""What a run cost (vlcp.cost): the benchmark file of every job, the table per rule beside vlcp plan's
estimate, and `vlcp plan --calibrate` on a finished run."""

import pandas as pd
import pytest

from conftest import DEMO_CONFIG, REPO, dry_run_jobs
from vlcp import cost
from vlcp.config import load_run_config

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write_benchmark(folder, rule, job, seconds, cpu, rss):
    path = folder / rule / f"{job}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:{int(seconds):02d}\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n")


def test_every_job_is_read_with_its_wildcards_and_priced_where_it_uses_a_gpu(tmp_path):
    write_benchmark(tmp_path, "caption", "part=three", 120, 30, 900.5)
    write_benchmark(tmp_path, "evaluate", "method=random,ipc=5,seed=0,model=convnet6,eval_seed=0", 60, 110, 300)
    write_benchmark(tmp_path, "aggregate", "job", 3, 2, "NA")
    rows = cost.read_benchmarks(tmp_path)
    by_rule = {r["rule"]: r for r in rows}
    assert by_rule["evaluate"]["wildcards"] == {
        "method": "random",
        "ipc": "5",
        "seed": "0",
        "model": "convnet6",
        "eval_seed": "0",
    }
    assert by_rule["caption"]["wall_min"] == 2.0 and by_rule["aggregate"]["max_rss_mb"] is None
    config = load_run_config([DEMO_CONFIG], REPO)
    priced = {r["rule"]: r for r in cost.cost_rows(rows, config, (10, 400, 200))}
    assert priced["caption"]["model"] == "tiny" and priced["caption"]["estimate_min"] > 0
    assert priced["evaluate"]["model"] == "convnet6" and priced["aggregate"]["estimate_min"] is None
    frame = pd.DataFrame(priced.values())
    text = cost.markdown(frame)
    assert "| caption | 1 | 2 min | 30 s | 900 MB |" in text and "| aggregate | 1 | 3 s | 2 s | - | - | - |" in text
    caption = next(line for line in text.splitlines() if line.startswith("| caption |"))
    assert caption.endswith(" | - |"), "no ratio against a full-size price for a tiny captioner"
    evaluate = next(line for line in text.splitlines() if line.startswith("| evaluate |"))
    ratio = 1.0 / priced["evaluate"]["estimate_min"]
    expected = f"{ratio:.2f}" if priced["evaluate"]["estimate_min"] >= 1 / 60 else "-"
    assert evaluate.endswith(f" | {expected} |"), evaluate


def test_no_ratio_on_an_estimate_under_a_second():
    frame = pd.DataFrame(
        [
            {
                "rule": "encode",
                "job": "a",
                "model": "sd",
                "wall_min": 2.0,
                "cpu_min": 2.0,
                "max_rss_mb": 1.0,
                "estimate_min": 0.01,
            },
            {
                "rule": "caption",
                "job": "b",
                "model": "llava",
                "wall_min": 3.0,
                "cpu_min": 2.0,
                "max_rss_mb": 1.0,
                "estimate_min": 1.5,
            },
        ]
    )
    rows = {line.split(" | ")[0]: line for line in cost.markdown(frame).splitlines()}
    assert rows["| encode"].endswith("| 1 s | - |") and rows["| caption"].endswith("| 2.00 |")


def test_the_elapsed_time_counts_jobs_side_by_side_once_and_no_gap():
    # (end in seconds, wall minutes): two jobs side by side for 60 s, then one of 30 s an hour later
    rows = [{"end": 100.0, "wall_min": 1.0}, {"end": 110.0, "wall_min": 1.0}, {"end": 3710.0, "wall_min": 0.5}]
    assert cost.busy_minutes(rows) == pytest.approx((70 + 30) / 60)
    frame = pd.DataFrame(
        [
            {
                "rule": "r",
                "job": "j",
                "model": None,
                "wall_min": 2.5,
                "cpu_min": 1.0,
                "max_rss_mb": 1.0,
                "estimate_min": None,
            }
        ]
    )
    text = cost.markdown(frame, cost.busy_minutes(rows))
    assert "The total's wall time is the sum over jobs, which run side by side." in text
    assert "The run's jobs ran in 2 min of elapsed time" in text, text


@pytest.mark.workflow
def test_the_demo_has_a_benchmark_per_job_and_a_cost_table(demo_run, tmp_path):
    run = demo_run / "results" / "demo"
    planned = dry_run_jobs(tmp_path, "--configfile", str(DEMO_CONFIG))  # every job of the demo, from scratch
    files = {(row["rule"], frozenset(row["wildcards"].items())) for row in cost.read_benchmarks(run / "benchmarks")}
    expected = {
        (rule, frozenset(tuple(pair.split("=", 1)) for pair in wildcards.split(", ") if pair))
        for rule, wildcards in planned
        if rule != "all"
    }
    assert files == expected
    table = pd.read_csv(run / "cost.csv")
    assert len(table) == len(files) - 1, "every job but the cost job, whose benchmark follows its table"
    assert (table["wall_min"] > 0).all()
    gpu = table[table["estimate_min"].notna()]
    assert set(gpu["rule"]) == {"caption", "encode", "finetune", "synthesize", "evaluate", "soft_label", "teacher"}
    markdown = (run / "cost.md").read_text()
    assert "| finetune | 1 |" in markdown and "measured / estimate" in markdown
    rows = {line.split(" | ")[0].strip("| "): line for line in markdown.splitlines() if line.startswith("| ")}
    assert all(rows[rule].endswith(" | - |") for rule in ("caption", "encode", "finetune", "synthesize")), (
        "the demo's tiny models: no ratio against full-size prices"
    )
    assert "The run's jobs ran in " in markdown and " of elapsed time" in markdown


@pytest.mark.workflow
def test_plan_calibrated_on_the_demo_prices_its_jobs_at_the_demos_measured_times(demo_run, tmp_path, capsys):
    from vlcp.plan import main

    run = demo_run / "results" / "demo"
    main(["--configfile", str(DEMO_CONFIG), "--directory", str(tmp_path), "--calibrate", str(run)])
    out = capsys.readouterr().out
    assert "calibrated |" in out and f"Calibrated on {run}" in out
    row = next(line for line in out.splitlines() if line.startswith("| caption |"))
    measured = pd.read_csv(run / "cost.csv").query("rule == 'caption'")["wall_min"].sum()
    from vlcp.sizing import format_minutes

    # the same jobs, the same model: the calibrated estimate is what the demo measured
    assert row.endswith(f"| {format_minutes(measured)} (2 of 2 jobs) |"), row  # parts of 5 classes

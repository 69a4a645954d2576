"""The demo through `--profile slurm` on a real single-node SLURM cluster (slurm/local-cluster/).

.ci/run starts the cluster and sets VLCP_SLURM_BASE; without it these tests are skipped, loudly.
The profile is slurm/config.yaml with only the site values and the status-check delay changed.
The one run proves more than the profile: it reads the digits as a user's ImageFolder, in parts of 5
classes, and is a run from scratch of the folder run's config (conftest.py), so its files must be that run's.
"""

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import (
    FAULT,
    PER_CLASS_RULES,
    QUICK_EVALUATION,
    REPO,
    by_class,
    folder_source,
    jobs_after_adding_an_image_to_three,
    jobs_by_rule,
    output_hashes,
    write_config,
    write_folder_demo,
)

pytestmark = pytest.mark.workflow
BASE = os.environ.get("VLCP_SLURM_BASE")
GPU_RULES = {"caption", "finetune", "encode", "synthesize", "evaluate", "soft_label", "teacher"}
ARRAY_RULES = {"index", "cluster", "text_prototype", "select", "encode", "synthesize"}
# The folder run's config (conftest.py: the digits read from an ImageFolder, data/ in the working folder;
# hard labels only, 10 epochs) with the demo's parts of 5 classes (every SLURM job starts Snakemake and
# parses the workflow, about 15 s on the 2-core test machine); a job per class is the folder run's.
SLURM_DEMO = {**QUICK_EVALUATION, **folder_source("data")}


def in_cluster(*cmd, env=None, cwd=None):
    return subprocess.run([f"{BASE}/in-cluster.sh", *map(str, cmd)], capture_output=True, text=True, env=env, cwd=cwd)


def cluster_up():
    return bool(BASE) and in_cluster("sinfo", "-h", "-o", "%a").stdout.strip().startswith("up")


def derived_profile(folder):
    """slurm/ with this cluster's account and a short first status check; nothing else changed (its
    partitions.yaml names the test cluster's partitions, cpu and gpu, as it ships)."""
    import shutil

    profile = yaml.safe_load((REPO / "slurm" / "config.yaml").read_text())
    profile["default-resources"] = {**(profile.get("default-resources") or {}), "slurm_account": "vlcptest"}
    profile["slurm-init-seconds-before-status-checks"] = 2
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    shutil.copy(REPO / "slurm" / "partitions.yaml", folder)
    return folder


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory):
    """The demo run through the SLURM profile: (working folder, its config, the console, the start time)."""
    if not cluster_up():
        pytest.skip(
            "SLURM TEST SKIPPED: no test cluster answered (VLCP_SLURM_BASE="
            f"{BASE!r}); .ci/run starts one with slurm/local-cluster/start.sh"
        )
    tmp_path = tmp_path_factory.mktemp("slurm")
    workdir = tmp_path / "work"
    write_folder_demo(workdir / "data")
    profile = derived_profile(tmp_path / "profile")
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        HF_HUB_OFFLINE="1",
        PYTHONPATH=os.pathsep.join([str(FAULT), str(REPO)]),
        VLCP_FAIL_ONCE=f"vlcp.aggregate:summarize:{workdir / 'failed-once'}",
    )
    start = (datetime.datetime.now() - datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    config = write_config(tmp_path / "slurm-demo.yaml", SLURM_DEMO)
    run = in_cluster(
        sys.executable, "-m", "snakemake", "-s", REPO / "Snakefile", "--directory", workdir, "--profile", profile,
        "--configfile", config, env=env,
    )  # fmt: skip
    return workdir, config, run, start


def test_demo_through_the_slurm_profile(slurm_run):
    workdir, _, run, start = slurm_run
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "submitted with SLURM jobid" in run.stdout + run.stderr
    assert (workdir / "failed-once").exists(), "the injected failure happened"
    assert (workdir / "results" / "demo" / "accuracy.csv").is_file()

    acct = in_cluster(
        "sacct",
        "-X",
        "--parsable2",
        "--noheader",
        "-S",
        start,
        "--format=JobID,JobName,State,AllocTRES,Partition,Comment%200",
    ).stdout
    jobs = [line.split("|") for line in acct.splitlines() if line.strip()]
    mine = [j for j in jobs if j[5].startswith("rule_")]
    assert mine, acct
    states = {}
    for job_id, name, state, tres, partition, comment in mine:
        rule = comment.split("_", 1)[1].split("_wildcards")[0] if comment.startswith("rule_") else None
        states.setdefault(state, []).append(comment)
        if rule in GPU_RULES:
            assert "gres/gpu=1" in tres and partition == "gpu", f"{comment}: {tres} on {partition}"
        else:
            assert "gres/gpu" not in tres and partition == "cpu", (
                f"{comment} is a CPU job but got {tres} on {partition}"
            )
    failed = [c for c in states.get("FAILED", [])]
    assert len(failed) == 1 and "aggregate" in failed[0], states.get("FAILED")
    assert set(states) == {"COMPLETED", "FAILED"}, {k: len(v) for k, v in states.items()}
    aggregates = [c for c in states["COMPLETED"] if "aggregate" in c]
    assert len(aggregates) == 1, "the failed aggregate job was retried and completed"
    submissions = {job_id.split("_")[0] for job_id, *_ in mine}
    arrays = {job_id.split("_")[0] for job_id, *_ in mine if "_" in job_id}
    assert arrays, "the per-class jobs went in as job arrays"
    per_part = [
        job_id
        for job_id, name, state, tres, partition, comment in mine
        if comment.split("_", 1)[1].split("_wildcards")[0] in ARRAY_RULES
    ]
    per_part_submissions = {job_id.split("_")[0] for job_id in per_part}
    # jobs of a rule ready together share a submission (which ones are ready together depends on timing)
    assert len(per_part_submissions) < len(per_part), (
        f"{len(per_part_submissions)} submissions for {len(per_part)} per-part jobs"
    )
    assert (workdir / "results" / "demo" / "parts" / "captions" / "part2").is_dir(), "the stages ran in parts"
    accuracy = (workdir / "results" / "demo" / "accuracy.csv").read_text()
    assert "minimax,vlcp-prototype,5" in accuracy and "minimax,random,5" in accuracy, accuracy
    print(f"SLURM: {len(mine)} jobs in {len(submissions)} submissions ({len(arrays)} arrays)")


def test_a_run_through_slurm_in_parts_writes_the_folder_runs_files(folder_run, slurm_run):
    # the same config as the folder run's but for the parts of 5 classes: a job per class, killed and
    # resumed, on a workstation, against parts of classes through SLURM; every file alike, evaluations too
    workdir, _, run, _ = slurm_run
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    a = by_class(output_hashes(folder_run[0] / "results" / "demo"))
    b = by_class(output_hashes(workdir / "results" / "demo"))
    assert a.keys() == b.keys(), sorted(a.keys() ^ b.keys())[:10]
    assert any(k.startswith("eval/minimax/vlcp-prototype/") for k in a) and "accuracy.csv" in a
    different = [k for k in a if a[k] != b[k]]
    assert not different, f"differ between the folder run and the SLURM run: {different[:10]}"
    part = workdir / "results/demo/parts/captions/part2"
    assert sorted(p.name for p in part.glob("*.jsonl")) == [
        f"{c}.jsonl" for c in ("seven", "six", "three", "two", "zero")
    ]


def test_adding_images_to_one_class_in_parts_reruns_its_part(slurm_run, tmp_path):
    workdir, config, run, _ = slurm_run
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    _, jobs = jobs_after_adding_an_image_to_three((workdir, config), tmp_path)
    parts = 2  # the fine-tune sees every class: every part's images are made again with the new model
    assert jobs_by_rule(jobs) == {
        **{"index": 1, "index_summary": 1, "caption": 1, "encode": 1},
        **{"cluster": 2, "text_prototype": 2, "select": 2, "finetune": 1, "synthesize": 2 * parts},
        **{"gather": 9, "manifest": 4, "evaluate": 4, "grid": 4, "aggregate": 1, "cost": 1, "all": 1},
    }
    per_part = [w for rule, w in jobs if rule in PER_CLASS_RULES]
    assert all("part=part2" in w for w in per_part), per_part  # seven, six, three, two, zero

"""The demo through `--profile slurm` on a real single-node SLURM cluster (slurm/local-cluster/).

.ci/run starts the cluster and sets VLCP_SLURM_BASE; without it this test is skipped, loudly.
The profile is slurm/config.yaml with only the site values and the status-check delay changed.
"""

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import DEMO_CONFIG, REPO

pytestmark = pytest.mark.workflow
BASE = os.environ.get("VLCP_SLURM_BASE")
GPU_RULES = {"caption", "finetune", "encode", "synthesize", "evaluate", "soft_label", "teacher"}
ARRAY_RULES = {"index", "cluster", "text_prototype", "select", "encode", "synthesize"}
# The whole demo (both protocols, the teacher, 'full') with its per-class stages in parts of 5 classes: every
# SLURM job starts Snakemake and parses the workflow (about 15 s on the 2-core test machine), and parts
# halve the demo's 140 jobs; a job per class is tested locally (test_workflow, test_reruns).
SLURM_DEMO = {"classes_per_job": 5}
FAULT = Path(__file__).parent / "fault"


def in_cluster(*cmd, env=None, cwd=None):
    return subprocess.run([f"{BASE}/in-cluster.sh", *map(str, cmd)], capture_output=True, text=True, env=env, cwd=cwd)


def cluster_up():
    return bool(BASE) and in_cluster("sinfo", "-h", "-o", "%a").stdout.strip().startswith("up")


def derived_profile(folder):
    """slurm/config.yaml with this cluster's account and a short first status check; nothing else changed."""
    profile = yaml.safe_load((REPO / "slurm" / "config.yaml").read_text())
    profile["default-resources"]["slurm_account"] = "vlcptest"
    profile["slurm-init-seconds-before-status-checks"] = 2
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def test_demo_through_the_slurm_profile(tmp_path):
    if not cluster_up():
        pytest.skip(
            "SLURM TEST SKIPPED: no test cluster answered (VLCP_SLURM_BASE="
            f"{BASE!r}); .ci/run starts one with slurm/local-cluster/start.sh"
        )
    workdir = tmp_path / "work"
    workdir.mkdir()
    profile = derived_profile(tmp_path / "profile")
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        HF_HUB_OFFLINE="1",
        PYTHONPATH=os.pathsep.join([str(FAULT), str(REPO)]),
        VLCP_FAIL_ONCE=f"vlcp.aggregate:summarize:{workdir / 'failed-once'}",
    )
    start = (datetime.datetime.now() - datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    parts = tmp_path / "parts.yaml"
    parts.write_text(yaml.safe_dump(SLURM_DEMO))
    run = in_cluster(
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        REPO / "Snakefile",
        "--directory",
        workdir,
        "--profile",
        profile,
        "--configfile",
        DEMO_CONFIG,
        parts,
        env=env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "submitted with SLURM jobid" in run.stdout + run.stderr
    assert (workdir / "failed-once").exists(), "the injected failure happened"
    assert (workdir / "results" / "demo" / "accuracy.csv").is_file()

    acct = in_cluster(
        "sacct", "-X", "--parsable2", "--noheader", "-S", start, "--format=JobID,JobName,State,AllocTRES,Comment%200"
    ).stdout
    jobs = [line.split("|") for line in acct.splitlines() if line.strip()]
    mine = [j for j in jobs if j[4].startswith("rule_")]
    assert mine, acct
    states = {}
    for job_id, name, state, tres, comment in mine:
        rule = comment.split("_", 1)[1].split("_wildcards")[0] if comment.startswith("rule_") else None
        states.setdefault(state, []).append(comment)
        if rule in GPU_RULES:
            assert "gres/gpu=1" in tres, f"{comment}: {tres}"
        else:
            assert "gres/gpu" not in tres, f"{comment} is a CPU job but got {tres}"
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
        for job_id, name, state, tres, comment in mine
        if comment.split("_", 1)[1].split("_wildcards")[0] in ARRAY_RULES
    ]
    per_part_submissions = {job_id.split("_")[0] for job_id in per_part}
    # jobs of a rule ready together share a submission (which ones are ready together depends on timing)
    assert len(per_part_submissions) < len(per_part), (
        f"{len(per_part_submissions)} submissions for {len(per_part)} per-part jobs"
    )
    assert (workdir / "results" / "demo" / "parts" / "captions" / "part2.tsv").is_file(), "the stages ran in parts"
    accuracy = (workdir / "results" / "demo" / "accuracy.csv").read_text()
    assert "rded,vlcp-prototype,5" in accuracy and "minimax,full,all" in accuracy, accuracy
    print(f"SLURM: {len(mine)} jobs in {len(submissions)} submissions ({len(arrays)} arrays)")

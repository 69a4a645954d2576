"""Fault tolerance: jobs SIGKILLed part-way through a run, a killed Snakemake, a full or read-only disk."""

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DEMO_CONFIG, faults, snakemake
from vlcp import contract
from vlcp.cli import describe
from vlcp.demo_data import CLASSES, write_demo

pytestmark = pytest.mark.workflow


def test_killed_jobs_keep_their_work_aside_and_the_same_command_resumes_them(killed_folder_run):
    # The folder run (conftest.py) was killed in its caption, fine-tune and synthesis jobs, one stage per run;
    # that the run finished after it writes the files an uninterrupted run writes is
    # test_reruns.py::test_a_job_per_class_writes_what_parts_of_classes_write.
    _, _, seen = killed_folder_run
    caption, finetune, synthesize, finished = (seen[k] for k in ("caption", "finetune", "synthesize", "finished"))
    assert caption["returncode"] != 0
    assert caption["captions"] == [], "a killed caption job leaves no declared output"
    assert caption["caption batches kept"] == len(CLASSES), "each job's finished batch is kept aside"

    assert finetune["returncode"] != 0
    assert not finetune["finetune"] and finetune["checkpoint-10"], "a killed fine-tune keeps its checkpoint"
    # a job per class, each killed after its first batch of 16 of 40 images, each resumed from it
    assert finetune["caption logs"] == len(CLASSES) and finetune["captions resumed"] == sorted(CLASSES)
    assert len(finetune["captions"]) == len(CLASSES)

    assert synthesize["returncode"] != 0
    assert synthesize["finetune resumed"], "the fine-tune resumed from checkpoint-10 (step 10 of 20)"
    assert synthesize["images kept"] > 0, "finished images of a killed synthesis are kept aside"

    assert finished["synthesis resumed"], "synthesis resumed from the images it had finished"
    assert finished["images kept"] == 0 and not finished["checkpoint-10"], "finished jobs leave nothing aside"


def stage(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "vlcp", *map(str, args)], capture_output=True, text=True, env=env)


@pytest.fixture
def small_mount(tmp_path):
    """A 64 KiB tmpfs (needs root and mount), emptied and unmounted afterwards."""
    target = tmp_path / "mnt"
    target.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)], capture_output=True).returncode:
        pytest.skip("SKIPPED LOUDLY: cannot mount a tmpfs here (needs root); the disk-full test did not run")
    yield target
    subprocess.run(["umount", str(target)], check=True)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits") / "data"
    write_demo(root, train_per_class=5, val_per_class=1, image_size=16, seed=0)
    return root


def index_one_class(digits, index, rejected):
    """The index stage on the digits' train split of class 'three', writing ``index`` and ``rejected``."""
    scan = ["--root", digits, "--split", "train", "--class", "three", "--label-table", "folder", "--extensions", ".png"]
    return stage("index", "scan", *scan, "--max-image-pixels", 10**6, "--index", index, "--rejected", rejected)


def test_a_full_disk_gives_a_clear_error_and_no_output(digits, small_mount):
    (small_mount / "filler").write_bytes(b"\0" * (64 * 1024 - 4096))
    out = small_mount / "results" / "demo" / "captions.jsonl"
    result = index_one_class(digits, out, small_mount / "rejected.tsv")
    assert result.returncode == 1
    assert "error: the disk is full while writing" in result.stderr and "Free space" in result.stderr
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".tmp-")], "no half-written temporary is left"


def test_a_results_folder_that_cannot_be_written(digits, tmp_path):
    target = tmp_path / "ro"
    target.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(target)], capture_output=True
    ).returncode:
        pytest.skip("SKIPPED LOUDLY: cannot mount a read-only tmpfs here (needs root); the test did not run")
    try:
        result = index_one_class(digits, target / "results/x.jsonl", target / "results/x.tsv")
    finally:
        subprocess.run(["umount", str(target)], check=True)
    assert result.returncode == 1
    assert "error: cannot write" in result.stderr and "results_dir" in result.stderr


def test_describe_names_the_file():
    assert "the disk is full while writing /r/x" in describe(OSError(errno.ENOSPC, "No space left", "/r/x"))
    assert "cannot write /r/y (Read-only file system)" in describe(
        OSError(errno.EROFS, "Read-only file system", "/r/y")
    )


def test_a_killed_snakemake_ends_its_jobs_and_the_same_command_resumes(tmp_path):
    # Snakemake SIGKILLed while a job runs (here an index job, just after its output is written): it
    # can neither stop its jobs nor clear its marks. The job watches it and ends within seconds instead
    # of running on orphaned; the output stays marked incomplete, and after --unlock the workflow's
    # default profile (profiles/default: rerun-incomplete) lets the plain command remake it.
    survived = tmp_path / "survived"
    # a job per class: the demo's parts of 5 would caption five classes before the kill
    target = ["results/demo/parts/captions/three", "--configfile", str(DEMO_CONFIG), "--config", "classes_per_job=1"]
    with faults(VLCP_KILL_SNAKEMAKE="vlcp.provenance:record:1", VLCP_SURVIVED=str(survived)):
        killed = snakemake(tmp_path, "--cores", "2", *target, check=False)
    assert killed.returncode == -9
    time.sleep(12)  # the job would have written its mark after 8 s
    assert not survived.exists(), "the job ran on after its Snakemake was killed"
    jobs = subprocess.run(["pgrep", "-f", "python -m vlcp"], capture_output=True, text=True).stdout.split()
    assert not [pid for pid in jobs if Path(f"/proc/{pid}/cwd").resolve() == tmp_path.resolve()]
    snakemake(tmp_path, "--unlock", *target)
    without = snakemake(tmp_path, "-n", "--workflow-profile", "none", *target, check=False)
    assert without.returncode != 0 and "IncompleteFilesException" in without.stdout + without.stderr
    again = snakemake(tmp_path, "--cores", "2", *target)
    assert "Using workflow specific profile" in again.stderr
    captions = tmp_path / "results" / "demo" / "parts" / "captions" / "three" / "three.jsonl"
    assert len(contract.read_captions(captions)) == 40

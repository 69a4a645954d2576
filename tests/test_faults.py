"""Fault tolerance: SIGKILL the long-running rules part-way through a demo run, rerun, and compare."""

import contextlib
import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DEMO_CONFIG, REPO, output_hashes, snakemake
from vlcp import contract
from vlcp.cli import describe
from vlcp.demo_data import write_demo

pytestmark = pytest.mark.workflow
FAULT = Path(__file__).parent / "fault"


@contextlib.contextmanager
def faults(**injected):
    """Every job of runs inside gets tests/fault/sitecustomize.py with ``injected`` (VLCP_KILL=...) set."""
    env = {**injected, "PYTHONPATH": os.pathsep.join([str(FAULT), str(REPO)])}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value


# The runs go as far as the distilled images (what the killed stages make); every output of the last is
# then compared with the uninterrupted demo run's. (The stages after synthesis are killed nowhere; that a
# second run from scratch makes them alike is tested by test_reruns and test_slurm.)
UNTIL = ("--until", "synthesize")


def run_with_kill(workdir, spec):
    """Run the demo with VLCP_KILL=spec in every job; return the failed CompletedProcess."""
    with faults(VLCP_KILL=spec):
        return snakemake(workdir, *UNTIL, "--cores", "2", "--keep-going", "--configfile", str(DEMO_CONFIG), check=False)


def test_killed_jobs_resume_and_end_where_an_uninterrupted_run_ends(demo_run, tmp_path):
    run = tmp_path / "results" / "demo"

    failed = run_with_kill(tmp_path, "vlcp.caption:Progress.append:1")
    assert failed.returncode != 0
    assert not list((run / "captions").glob("*.jsonl")), "a killed caption job leaves no declared output"
    assert list((run / "work" / "captions").glob("*/batches.jsonl")), "finished batches are kept aside"

    failed = run_with_kill(tmp_path, "vlcp.finetune:save_checkpoint:1")
    assert failed.returncode != 0
    assert not (run / "finetune" / "shared").exists()
    assert (run / "work" / "finetune" / "shared" / "checkpoint-10").is_dir()
    # the demo captions in parts of 5 classes: each part's job was killed after its first class's first batch
    caption_logs = [p.read_text() for p in (run / "logs" / "caption").glob("*.log")]
    assert len(caption_logs) == 2 and all("resuming: 16 of 40 images already captioned" in log for log in caption_logs)

    failed = run_with_kill(tmp_path, "vlcp.synthesize:resize_for_evaluation:2")
    assert failed.returncode != 0
    assert "resuming from checkpoint-10 (step 10 of 20)" in (run / "logs" / "finetune" / "shared.log").read_text()
    leftovers = list((run / "work" / "synthesize").rglob("*.png"))
    assert leftovers, "finished images of a killed synthesis are kept aside"

    snakemake(tmp_path, *UNTIL, "--cores", "2", "--configfile", str(DEMO_CONFIG))
    resumed = [
        p
        for p in (run / "logs" / "synthesize").rglob("*.log")
        if "resuming: 1 of 5 images already made" in p.read_text()
    ]
    assert resumed, "synthesis resumed from the images it had finished"
    # resumed = uninterrupted for every output, but those VOLATILE by design (conftest.py)
    mine, uninterrupted = output_hashes(run), output_hashes(demo_run / "results" / "demo")
    images = [k for k in mine if k.startswith("distilled/vlcp-prototype/") and k.endswith(".png")]
    assert len(images) == 10 * (1 + 5) and "finetune/shared/unet/diffusion_pytorch_model.safetensors" in mine
    assert mine.keys() <= uninterrupted.keys(), sorted(mine.keys() - uninterrupted.keys())[:10]
    different = sorted(k for k in mine if mine[k] != uninterrupted[k])
    assert not different, f"differ from the uninterrupted run: {different[:10]}"


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
    target = ["results/demo/captions/three.jsonl", "--configfile", str(DEMO_CONFIG), "--config", "classes_per_job=1"]
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
    captions = tmp_path / "results" / "demo" / "captions" / "three.jsonl"
    assert len(contract.read_captions(captions)) == 40

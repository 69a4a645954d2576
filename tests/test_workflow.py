"""The demo workflow: the plan lists the expected jobs, and the run builds what it promises."""

import re

import pytest

from conftest import REPO, snakemake
from vlcp import contract
from vlcp.demo_data import CLASSES

DEMO = str(REPO / "config" / "demo.yaml")


def job_counts(output):
    table = output.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_dry_run_lists_the_demo_jobs(tmp_path):
    result = snakemake(tmp_path, "-n", "--configfile", DEMO)
    counts = job_counts(result.stdout)
    assert counts["demo_data"] == 1
    assert counts["tiny_model"] == 2
    assert counts["index"] == 2 * len(CLASSES)
    assert counts["index_summary"] == 1
    assert counts["caption"] == len(CLASSES)
    assert counts["encode"] == len(CLASSES)
    assert counts["finetune"] == 1, "the demo shares one fine-tune across seeds"
    assert counts["all"] == 1
    assert not (tmp_path / "results").exists(), "a dry run must write nothing"


@pytest.mark.workflow
def test_demo_runs_and_a_second_run_has_nothing_to_do(tmp_path):
    snakemake(tmp_path, "--cores", "2", "--configfile", DEMO)
    run = tmp_path / "results" / "demo"
    for split, count in (("train", 40), ("val", 20)):
        rows = contract.read_index(run / "index" / split / "seven.jsonl")
        assert len(rows) == count
        assert rows[0]["label"] == "handwritten digit seven"
        assert all(r["image"].startswith(f"{split}/seven/") for r in rows)
    assert (run / "models" / "tiny-stable-diffusion" / "model_index.json").is_file()
    assert (run / "models" / "tiny-llava" / "config.json").is_file()
    train = [r["image"] for r in contract.read_index(run / "index" / "train" / "seven.jsonl")]
    captions = contract.read_captions(run / "captions" / "seven.jsonl", train)
    assert len(captions) == 40 and all(c["caption"] for c in captions)
    latents, images = contract.read_latents(run / "latents" / "seven.safetensors")
    assert latents["latents"].shape == (40, 4, 8, 8) and images == train
    assert (run / "finetune" / "shared" / "model_index.json").is_file()
    assert not (run / "work" / "captions" / "seven.partial.jsonl").exists()
    again = snakemake(tmp_path, "-n", "--configfile", DEMO)
    assert "Nothing to be done" in again.stdout + again.stderr

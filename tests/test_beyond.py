"""Beyond the paper, on the finished demo (config/demo-beyond.yaml): D4M's sets and VLCP sets that keep the
best of 4 candidates per prototype, made beside the demo's own sets by the new jobs alone."""

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from conftest import DEMO_CONFIG, REPO, output_hashes, part_file, snakemake
from vlcp.demo_data import CLASSES

BEYOND = REPO / "config" / "demo-beyond.yaml"
pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def beyond_run(demo_run, tmp_path_factory):
    """A copy of the finished demo, run again with config/demo-beyond.yaml; (the copy's run folder, the
    demo's output hashes before)."""
    work = tmp_path_factory.mktemp("beyond") / "run"
    shutil.copytree(demo_run, work, symlinks=True)
    before = output_hashes(demo_run / "results" / "demo")
    snakemake(work, "--cores", "2", "--configfile", str(DEMO_CONFIG), str(BEYOND))
    return work / "results" / "demo", before


def test_only_the_new_sets_are_made_and_the_summary_has_them_all(beyond_run):
    run, before = beyond_run
    after = output_hashes(run)
    changed = sorted(
        name
        for name, digest in before.items()
        if after.get(name) != digest and not name.startswith(("summary", "accuracy"))
    )
    assert changed == [], f"the demo's own files changed: {changed[:10]}"
    assert not (run / "finetune" / "seed0").exists()
    summary = pd.read_csv(run / "summary.csv")
    best = summary[summary["metric"] == "top1_best"]
    for protocol in ("minimax", "rded"):
        rows = best[best["protocol"] == protocol]
        for method in ("vlcp-prototype", "vlcp-prototype-k4", "d4m", "random"):
            assert sorted(rows[rows["method"] == method]["ipc"].astype(str)) == ["1", "5"], (protocol, method)
    assert (run / "report" / "grids" / "d4m-ipc5-seed0.png").is_file()


def test_d4m_is_made_from_the_base_model_with_the_label_as_prompt(beyond_run):
    run, _ = beyond_run
    record = json.loads((run / "distilled/d4m/ipc5/seed0/seven/provenance.json").read_text())
    settings = record["settings"]
    assert settings["model"].endswith("models/tiny-stable-diffusion"), "D4M does not fine-tune"
    assert (settings["guidance_scale"], settings["prompt_encoding"], settings["negative_prompt"]) == (
        8.0,
        "truncate",
        "cartoon, anime, painting",
    )
    assert (settings["strength"], settings["num_inference_steps"]) == (0.6, 10), "config/demo-beyond.yaml's"
    prompts = json.loads(part_file(run, "d4m/prompts/ipc5/seed0", "seven.json").read_text())
    assert [p["prompt"] for p in prompts] == ["handwritten digit seven"] * 5
    assert len(list((run / "distilled/d4m/ipc5/seed0/seven").glob("*.png"))) == 5


def test_each_prototype_keeps_its_best_scored_candidate(beyond_run):
    run, _ = beyond_run
    for cls in CLASSES:
        record = json.loads((run / f"distilled/vlcp-prototype-k4/ipc5/seed0/{cls}/provenance.json").read_text())
        choices = record["settings"]["choices"]
        assert record["settings"]["candidates"] == 4 and len(choices) == 5
        for choice in choices:
            scores = choice["scores"]
            assert len(scores) == 4 and all(0 <= s <= 1 for s in scores)
            assert choice["chosen"] == min(range(4), key=lambda c: (-scores[c], c))
    assert not (run / "candidates").exists(), "rejected candidates are not kept unless execution asks"


def regenerate(run, tmp_path, *args):
    out = tmp_path / "-".join(args).replace("/", "_")
    done = subprocess.run(
        [sys.executable, "-m", "vlcp", "regenerate", "--run", str(run), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out, done.stderr


def test_regenerate_remakes_a_chosen_candidate_and_a_d4m_image_byte_for_byte(beyond_run, tmp_path):
    run, _ = beyond_run
    record = json.loads((run / "distilled/vlcp-prototype-k4/ipc5/seed0/three/provenance.json").read_text())
    choices = record["settings"]["choices"]
    choice = next((c for c in choices if c["chosen"] != 0), choices[0])  # a candidate other than 0 if any
    k = choice["cluster"]
    args = ["--class", "three", "--ipc", "5", "--seed", "0", "--cluster", str(k)]
    out, said = regenerate(run, tmp_path, *args, "--method", "vlcp-prototype-k4")
    assert out.read_bytes() == (run / f"distilled/vlcp-prototype-k4/ipc5/seed0/three/{k}.png").read_bytes(), said
    assert "identical to" in said
    rejected = next(c for c in range(4) if c != choice["chosen"])
    other, said = regenerate(run, tmp_path, *args, "--method", "vlcp-prototype-k4", "--candidate", str(rejected))
    assert "did not keep" in said and other.read_bytes() != out.read_bytes()
    out, said = regenerate(run, tmp_path, *args, "--method", "d4m")
    assert out.read_bytes() == (run / f"distilled/d4m/ipc5/seed0/three/{k}.png").read_bytes(), said

"""Incremental reruns, provenance and bad data arriving mid-way, on a finished run.

``folder_run`` (conftest.py) is the demo as a user would run their own data: the digits are written
once by ``python -m vlcp demo_data`` and read as an ImageFolder (dataset.source: folder), with a
job per class, killed three times part-way and resumed each time by the same command (test_faults.py).
That two runs from scratch write the same files is tested where a second run is made anyway: this
one (a job per class, killed and resumed, where the demo runs parts of 5 classes uninterrupted) and
the run through SLURM (test_slurm.py).
"""

import json
import shutil
from pathlib import Path

import pytest

from conftest import (
    DEMO_CONFIG,
    PER_CLASS_RULES,
    by_class,
    copy_run,
    deep_update,
    dry_run_jobs,
    jobs_after_adding_an_image_to_three,
    jobs_by_rule,
    load_yaml,
    output_hashes,
    snakemake,
    write_config,
)
from vlcp.demo_data import CLASSES
from vlcp.models import ModelNotFoundError, load_stable_diffusion

pytestmark = pytest.mark.workflow
N = len(CLASSES)


# What the folder run and the demo run (config/demo.yaml as it ships) make alike: every stage up to the
# distilled and the random sets; the evaluations differ by design (hard labels only, 10 epochs).
SAME_AS_THE_DEMO = ("index/", "captions/", "latents/", "finetune/", "clusters/", "prototypes/", "distilled/")


def test_a_job_per_class_writes_what_parts_of_classes_write(demo_run, folder_run):
    # The demo runs its per-class stages in parts of 5 classes, uninterrupted; the folder run a job per
    # class, killed in its caption, fine-tune and synthesis jobs and resumed. A second run from scratch, and
    # from an ImageFolder, it must write the same files.
    demo = by_class(output_hashes(demo_run / "results" / "demo"))
    mine = by_class(output_hashes(folder_run[0] / "results" / "demo"))
    assert (demo_run / "results/demo/parts/captions/part2/three.jsonl").is_file()
    assert (folder_run[0] / "results/demo/parts/captions/three/three.jsonl").is_file()
    compared = {k for k in demo if k.startswith(SAME_AS_THE_DEMO)}
    assert len(compared) > 250 and "finetune/shared/unet/diffusion_pytorch_model.safetensors" in compared
    ours = {k for k in mine if k.startswith(SAME_AS_THE_DEMO)}
    # the whole train split's index is made only for the teacher and 'full', which the folder run leaves out
    assert compared - ours == {"index/train.jsonl"} and ours <= compared, sorted(compared ^ ours)[:10]
    assert sum(k.startswith("distilled/vlcp-prototype/") and k.endswith(".png") for k in ours) == N * (1 + 5)
    different = sorted(k for k in ours if demo[k] != mine[k])
    assert not different, f"differ between a job per class and parts of classes: {different[:10]}"


def test_provenance_beside_every_result(folder_run):
    run = folder_run[0] / "results" / "demo"
    caption = json.loads((run / "captions" / "three.jsonl.provenance.json").read_text())
    assert caption["stage"] == "caption"
    assert caption["settings"]["prompt"].startswith("Describe the physical appearance")
    assert caption["packages"]["torch"] and caption["packages"]["transformers"]
    model = caption["models"][0]
    assert model["path"].endswith("tiny-llava") and len(model["fingerprint"]) == 64
    finetune = json.loads((run / "finetune" / "shared" / "provenance.json").read_text())
    assert finetune["settings"]["seed"] == 0 and finetune["settings"]["steps"] == 20
    for path in (
        "clusters/ipc5/seed0/three.json",
        "prototypes/ipc5/seed0/three.json",
        "parts/latents/three/three.safetensors",
        "eval/minimax/random/ipc5/seed0/convnet6/eval0.csv",
        "parts/index/train/three/three.jsonl",
    ):
        assert (run / f"{path}.provenance.json").is_file(), path
    synth = json.loads((run / "distilled/vlcp-prototype/ipc5/seed0/three/provenance.json").read_text())
    assert (
        synth["settings"]["seed"] == 0
        and synth["settings"]["strength"] == load_yaml(DEMO_CONFIG)["synthesize"]["strength"] == 0.6
    )


# vlcp-prototype at IPC 1 and 5; cost follows every result. Rule gather makes the folders a user reads
# from those of the parts (captions/, clusters/..., prototypes/... and each set's, at IPC 1 and 5)
VLCP_DOWNSTREAM = {"manifest": 2, "evaluate": 2, "grid": 2, "aggregate": 1, "cost": 1, "all": 1}
MATRIX = [
    (
        "caption.prompt",
        {"caption": {"prompt": "Describe the {label}."}},
        {"caption": N, "finetune": 1, "text_prototype": 2 * N, "synthesize": 2 * N, **VLCP_DOWNSTREAM, "gather": 5},
    ),
    (
        "text_prototype.beta",
        {"text_prototype": {"beta": 0.5}},
        {"text_prototype": 2 * N, "synthesize": 2 * N, **VLCP_DOWNSTREAM, "gather": 4},
    ),
    (
        "text_prototype.top_k",
        {"text_prototype": {"top_k": 5}},
        {"text_prototype": 2 * N, "synthesize": 2 * N, **VLCP_DOWNSTREAM, "gather": 4},
    ),
    (
        "cluster.contamination",
        {"cluster": {"contamination": 0.2}},
        {"cluster": 2 * N, "text_prototype": 2 * N, "synthesize": 2 * N, **VLCP_DOWNSTREAM, "gather": 6},
    ),
    (
        "finetune.learning_rate",
        {"finetune": {"learning_rate": 2.0e-4}},
        {"finetune": 1, "synthesize": 2 * N, **VLCP_DOWNSTREAM, "gather": 2},
    ),
    (
        "synthesize.guidance_scale",
        {"synthesize": {"guidance_scale": 7.5}},
        {"synthesize": 2 * N, **VLCP_DOWNSTREAM, "gather": 2},
    ),
    (
        "ipc + [2]",
        {"ipc": [1, 5, 2]},
        {
            "cluster": N,
            "text_prototype": N,
            "synthesize": N,
            "select": N,
            "gather": 4,
            "manifest": 2,
            "evaluate": 2,
            "grid": 2,
            "aggregate": 1,
            "cost": 1,
            "all": 1,
        },
    ),
    (
        "seeds + [1]",
        {"seeds": [0, 1]},
        {
            "cluster": 2 * N,
            "text_prototype": 2 * N,
            "synthesize": 2 * N,
            "select": 2 * N,
            "gather": 8,
            "manifest": 4,
            "evaluate": 4,
            "grid": 4,
            "aggregate": 1,
            "cost": 1,
            "all": 1,
        },
    ),
    (
        "evaluate.models + resnetap10",
        {"evaluate": {"models": ["convnet6", "resnetap10"]}},
        {"evaluate": 4, "aggregate": 1, "cost": 1, "all": 1},
    ),
    (
        "evaluate.epochs",
        {"evaluate": {"epochs": [{"max_ipc": 10, "epochs": 120}]}},
        {"evaluate": 4, "aggregate": 1, "cost": 1, "all": 1},
    ),
    (
        "execution.finetune.checkpointing_steps (no effect on results)",
        {"execution": {"finetune": {"checkpointing_steps": 5}}},
        {},
    ),
    ("execution.encode.batch_size (no effect on results)", {"execution": {"encode": {"batch_size": 7}}}, {}),
    ("execution.synthesize.batch_size (no effect on results)", {"execution": {"synthesize": {"batch_size": 3}}}, {}),
]


@pytest.mark.parametrize("key,override,expected", MATRIX, ids=[m[0] for m in MATRIX])
def test_changing_one_key_reruns_exactly_what_depends_on_it(folder_run, tmp_path, key, override, expected):
    workdir, base = folder_run
    config = write_config(tmp_path / "changed.yaml", deep_update(load_yaml(base), override))
    jobs = dry_run_jobs(workdir, "--configfile", str(config))
    assert jobs_by_rule(jobs) == expected
    if key == "ipc + [2]":
        assert all(
            "ipc=2" in w
            for rule, w in jobs
            if rule in ("cluster", "text_prototype", "synthesize", "select", "manifest", "evaluate", "grid")
        )
    if key.startswith("evaluate.models"):
        assert all("model=resnetap10" in w for rule, w in jobs if rule == "evaluate")
    if key == "caption.prompt":
        assert all("method=vlcp-prototype" in w for rule, w in jobs if rule in ("evaluate", "grid"))


def rerun_after_one_image(synthesize):
    """Jobs by rule after one class gains an image: that class's (or part's) jobs; the fine-tune sees every
    class, so ``synthesize`` jobs make every class's images again with the new model."""
    return {
        "index": 1,
        "index_summary": 1,
        "caption": 1,
        "encode": 1,
        "cluster": 2,
        "text_prototype": 2,
        "select": 2,
        "finetune": 1,
        "synthesize": synthesize,
        "gather": 9,
        "manifest": 4,
        "evaluate": 4,
        "grid": 4,
        "aggregate": 1,
        "cost": 1,
        "all": 1,
    }


def test_adding_images_to_one_class_reruns_only_that_class(folder_run, tmp_path):
    _, jobs = jobs_after_adding_an_image_to_three(folder_run, tmp_path)
    assert jobs_by_rule(jobs) == rerun_after_one_image(synthesize=2 * N)
    per_class = [w for rule, w in jobs if rule in PER_CLASS_RULES]
    assert all("part=three" in w for w in per_class), per_class


def test_a_class_whose_images_are_all_rejected_stops_with_its_name(folder_run, tmp_path):
    workdir, base = folder_run
    copy = copy_run(workdir, tmp_path)
    before = (copy / "results/demo/captions/seven.jsonl").read_bytes()
    folder = copy / "data" / "val" / "four"
    for image in folder.iterdir():
        image.write_bytes(b"not a png any more")
    (folder / "new.png").write_bytes(b"")
    result = snakemake(copy, "--cores", "2", "--configfile", str(base), check=False)
    assert result.returncode != 0
    log = (copy / "results/demo/logs/index/val/four.log").read_text()
    assert "class 'four' has no usable image" in log and "Add images to it" in log
    assert (copy / "results/demo/captions/seven.jsonl").read_bytes() == before, "computed results are kept"


def test_a_caption_file_with_a_line_missing_is_named(folder_run, tmp_path):
    workdir, base = folder_run
    copy = copy_run(workdir, tmp_path)
    # the file the jobs read, in its part's folder: a file changed inside a folder output reruns nothing by
    # itself (Snakemake dates a folder by its own mark), so the jobs that read it are asked to run again
    captions = copy / "results/demo/parts/captions/five/five.jsonl"
    lines = captions.read_text().splitlines(keepends=True)
    captions.write_text("".join(lines[:3] + lines[4:]))
    latents = (copy / "results/demo/parts/latents/five/five.safetensors").read_bytes()
    rerun = ["--forcerun", "text_prototype", "finetune"]
    result = snakemake(copy, "--cores", "2", "--configfile", str(base), *rerun, check=False)
    assert result.returncode != 0
    logs = "".join(
        p.read_text() for p in (copy / "results/demo/logs").rglob("*.log") if "five" in str(p) or "finetune" in str(p)
    )
    named = Path("results/demo/parts/captions/five/five.jsonl")
    assert f"{named} does not match the image index: 1 image(s) without a caption" in logs
    assert "Delete the file and rerun" in logs
    assert (copy / "results/demo/parts/latents/five/five.safetensors").read_bytes() == latents


def test_a_model_folder_with_a_missing_file_is_named(folder_run, tmp_path):
    model = tmp_path / "sd"
    shutil.copytree(folder_run[0] / "results/demo/models/tiny-stable-diffusion", model)
    (model / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(
        ModelNotFoundError, match=r"the folder .*sd, which does not hold a loadable checkpoint.*Set models.diffusion"
    ):
        load_stable_diffusion(str(model))

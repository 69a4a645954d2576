"""Incremental reruns, determinism, provenance and bad data arriving mid-way, on finished demo runs.

``folder_run`` is the demo as a user would run their own data: the digits are written
once by ``python -m vlcp demo_data`` and read as an ImageFolder (dataset.source: folder).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import DEMO_CONFIG, HARD_LABELS_ONLY, deep_update, dry_run_jobs, load_yaml, output_hashes, snakemake
from vlcp import contract
from vlcp.demo_data import CLASSES
from vlcp.models import ModelNotFoundError, load_stable_diffusion

pytestmark = pytest.mark.workflow
N = len(CLASSES)


def write_config(path, override):
    import yaml

    path.write_text(yaml.safe_dump(deep_update(load_yaml(DEMO_CONFIG), override)))
    return path


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("folder-run")
    demo = load_yaml(DEMO_CONFIG)["demo"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "vlcp",
            "demo_data",
            str(workdir / "data"),
            "--train-per-class",
            str(demo["train_per_class"]),
            "--val-per-class",
            str(demo["val_per_class"]),
            "--image-size",
            str(demo["image_size"]),
            "--seed",
            str(demo["seed"]),
        ],
        check=True,
    )
    config = write_config(
        workdir / "base.yaml",
        {**HARD_LABELS_ONLY, "dataset": {"source": "folder", "root": "data", "label_table": "data/labels.tsv"}},
    )
    snakemake(workdir, "--cores", "2", "--configfile", str(config))
    return workdir, config


# The folder run evaluates hard labels only (HARD_LABELS_ONLY): the demo run's other evaluations write these
# files, which it lacks, and its aggregate files hold fewer rows (compared row by row).
ONLY_IN_DEMO_RUN = ("eval/rded/*", "eval/minimax/full/*", "teacher/*", "index/train.jsonl")
AGGREGATE = ("accuracy.csv", "summary.csv", "summary.md", "summary-table.csv", "accuracy.png")


def hard_label_rows(run):
    """The accuracy rows of a run's distilled sets under Minimax's protocol, as text, in the narrowest types."""
    frame = contract.read_accuracy(run / "accuracy.csv")
    # without the columns only the other rows fill (the soft-label settings); each column in the narrowest
    # type that holds it: a column that other rows leave empty reads as float
    frame = frame[(frame.protocol == "minimax") & (frame.method != "full")].dropna(axis=1, how="all")
    return frame.convert_dtypes().to_csv(index=False)


def test_two_runs_from_scratch_are_byte_identical(demo_run, folder_run):
    # every output of the two runs but those VOLATILE by design (conftest.py) and the differences of config
    import fnmatch

    demo, folder = demo_run / "results" / "demo", folder_run[0] / "results" / "demo"
    a, b = output_hashes(demo), output_hashes(folder)
    assert len(b) > 250 and not b.keys() - a.keys(), sorted(b.keys() - a.keys())[:10]
    unexplained = [k for k in a.keys() - b.keys() if not any(fnmatch.fnmatch(k, p) for p in ONLY_IN_DEMO_RUN)]
    assert not unexplained, f"only in the demo run: {unexplained[:10]}"
    different = sorted(k for k in b if a[k] != b[k] and k not in AGGREGATE)
    assert not different, f"differ between the two runs: {different[:10]}"
    assert hard_label_rows(demo) == hard_label_rows(folder)


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
        "latents/three.safetensors",
        "eval/minimax/random/ipc5/seed0/convnet6/eval0.csv",
        "index/train/three.jsonl",
    ):
        assert (run / f"{path}.provenance.json").is_file(), path
    synth = json.loads((run / "distilled/vlcp-prototype/ipc5/seed0/three/provenance.json").read_text())
    assert (
        synth["settings"]["seed"] == 0
        and synth["settings"]["strength"] == load_yaml(DEMO_CONFIG)["synthesize"]["strength"] == 0.6
    )


def jobs_by_rule(jobs):
    counts = {}
    for rule, _ in jobs:
        counts[rule] = counts.get(rule, 0) + 1
    return counts


# vlcp-prototype at IPC 1 and 5; cost follows every result
VLCP_DOWNSTREAM = {"manifest": 2, "evaluate": 2, "grid": 2, "aggregate": 1, "cost": 1, "all": 1}
MATRIX = [
    (
        "caption.prompt",
        {"caption": {"prompt": "Describe the {label}."}},
        {"caption": N, "finetune": 1, "text_prototype": 2 * N, "synthesize": 2 * N, **VLCP_DOWNSTREAM},
    ),
    (
        "text_prototype.beta",
        {"text_prototype": {"beta": 0.5}},
        {"text_prototype": 2 * N, "synthesize": 2 * N, **VLCP_DOWNSTREAM},
    ),
    (
        "text_prototype.top_k",
        {"text_prototype": {"top_k": 5}},
        {"text_prototype": 2 * N, "synthesize": 2 * N, **VLCP_DOWNSTREAM},
    ),
    (
        "cluster.contamination",
        {"cluster": {"contamination": 0.2}},
        {"cluster": 2 * N, "text_prototype": 2 * N, "synthesize": 2 * N, **VLCP_DOWNSTREAM},
    ),
    (
        "finetune.learning_rate",
        {"finetune": {"learning_rate": 2.0e-4}},
        {"finetune": 1, "synthesize": 2 * N, **VLCP_DOWNSTREAM},
    ),
    ("synthesize.guidance_scale", {"synthesize": {"guidance_scale": 7.5}}, {"synthesize": 2 * N, **VLCP_DOWNSTREAM}),
    (
        "ipc + [2]",
        {"ipc": [1, 5, 2]},
        {
            "cluster": N,
            "text_prototype": N,
            "synthesize": N,
            "select": N,
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


def copy_run(workdir, tmp_path):
    """A copy of a finished run, with modification times kept so Snakemake sees it as finished."""
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy, symlinks=True, copy_function=shutil.copy2)
    return copy


PER_CLASS_RULES = ("index", "caption", "encode", "cluster", "text_prototype", "select")


def jobs_after_adding_an_image_to_three(run, tmp_path):
    """A copy of ``run`` = (workdir, config) with one image more in train/three, and the jobs its dry run lists."""
    workdir, config = run
    copy = copy_run(workdir, tmp_path)
    Image.new("L", (32, 32), 128).save(copy / "data" / "train" / "three" / "9999.png")
    return copy, dry_run_jobs(copy, "--configfile", str(config))


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
    assert all("cls=three" in w for w in per_class), per_class


@pytest.fixture(scope="module")
def grouped_run(folder_run, tmp_path_factory):
    """The folder demo again from scratch, its per-class stages in parts of 4 classes (classes_per_job)."""
    workdir = tmp_path_factory.mktemp("grouped-run")
    shutil.copytree(folder_run[0] / "data", workdir / "data")
    config = write_config(workdir / "grouped.yaml", deep_update(load_yaml(folder_run[1]), {"classes_per_job": 4}))
    snakemake(workdir, "--cores", "2", "--configfile", str(config))
    return workdir, config


def test_a_run_in_parts_of_classes_gives_the_same_files(folder_run, grouped_run):
    a = output_hashes(folder_run[0] / "results" / "demo")
    b = output_hashes(grouped_run[0] / "results" / "demo")
    # the part records of the grouped run (parts/) are its own: a run of a job per class writes none
    assert a.keys() == {k for k in b if not k.startswith("parts/")}
    different = [k for k in a if a[k] != b[k]]
    assert not different, f"differ between the per-class and the grouped run: {different[:10]}"
    record = (grouped_run[0] / "results/demo/parts/captions/part2.tsv").read_text().split()
    assert record == ["out", *(f"results/demo/captions/{cls}.jsonl" for cls in ("one", "seven", "six", "three"))]


def test_adding_images_to_one_class_in_parts_reruns_its_part(grouped_run, tmp_path):
    copy, jobs = jobs_after_adding_an_image_to_three(grouped_run, tmp_path)
    assert jobs_by_rule(jobs) == rerun_after_one_image(synthesize=2 * 3)
    per_part = [w for rule, w in jobs if rule in PER_CLASS_RULES]
    assert all("part=part2" in w for w in per_part), per_part  # one, seven, six, three
    # the rerun replaces the part's own files (Snakemake removes only its record)
    snakemake(copy, "results/demo/parts/captions/part2.tsv", "--cores", "2", "--configfile", str(grouped_run[1]))
    rows = contract.read_captions(copy / "results/demo/captions/three.jsonl")
    assert any(r["image"] == "train/three/9999.png" for r in rows)


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
    captions = copy / "results/demo/captions/five.jsonl"
    lines = captions.read_text().splitlines(keepends=True)
    captions.write_text("".join(lines[:3] + lines[4:]))
    latents = (copy / "results/demo/latents/five.safetensors").read_bytes()
    result = snakemake(copy, "--cores", "2", "--configfile", str(base), check=False)
    assert result.returncode != 0
    logs = "".join(
        p.read_text() for p in (copy / "results/demo/logs").rglob("*.log") if "five" in str(p) or "finetune" in str(p)
    )
    assert (
        f"{Path('results/demo/captions/five.jsonl')} does not match the image index: 1 image(s) without a caption"
        in logs
    )
    assert "Delete the file and rerun" in logs
    assert (copy / "results/demo/latents/five.safetensors").read_bytes() == latents


def test_a_model_folder_with_a_missing_file_is_named(folder_run, tmp_path):
    model = tmp_path / "sd"
    shutil.copytree(folder_run[0] / "results/demo/models/tiny-stable-diffusion", model)
    (model / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(
        ModelNotFoundError, match=r"the folder .*sd, which does not hold a loadable checkpoint.*Set models.diffusion"
    ):
        load_stable_diffusion(str(model))

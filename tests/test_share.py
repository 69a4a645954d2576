"""Share and compare: a distilled set exported as a Hugging Face imagefolder, a set made elsewhere evaluated
like the run's own, and one distilled image regenerated alone."""

import hashlib
import json
import shutil

import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import REPO, snakemake
from vlcp import contract
from vlcp.demo_data import CLASSES
from vlcp.external import ExternalSetError, check_images, scan

DEMO = str(REPO / "config" / "demo.yaml")
EXTENSIONS = [".png", ".jpg"]


@pytest.fixture(scope="module")
def shared_run(demo_run, tmp_path_factory):
    """A copy of the finished demo with the demo's random IPC-5 set, copied elsewhere, as the external set
    'theirs', and named as the paper's ImageWoof (its 'full' ConvNet-6 row then meets Table 1's); then the
    default target and `export`."""
    root = tmp_path_factory.mktemp("share")
    work = root / "run"
    shutil.copytree(demo_run, work, symlinks=True)
    theirs = root / "elsewhere" / "theirs"
    shutil.copytree(demo_run / "results/demo/distilled/random/ipc5/seed0", theirs)  # with its provenance.json files
    extra = root / "external.yaml"
    extra.write_text(yaml.safe_dump({"external": {"theirs": str(theirs)}, "paper_dataset": "imagewoof"}))
    snakemake(work, "all", "export", "--cores", "2", "--configfile", DEMO, str(extra))
    return work / "results" / "demo", theirs


@pytest.mark.workflow
def test_the_demos_sets_export_and_load_with_datasets(shared_run, tmp_path, monkeypatch):
    from datasets import ClassLabel, load_dataset

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    run, _ = shared_run
    exported = sorted(p.name for p in (run / "export").iterdir())
    assert exported == [
        "captions.jsonl",
        "random-ipc1-seed0",
        "random-ipc5-seed0",
        "vlcp-prototype-ipc1-seed0",
        "vlcp-prototype-ipc5-seed0",
    ], exported
    labels = [row.split("\t")[1] for row in (run / "index" / "classes.tsv").read_text().splitlines()[1:]]
    for name, ipc in (("vlcp-prototype-ipc5-seed0", 5), ("random-ipc1-seed0", 1)):
        folder = run / "export" / name
        ds = load_dataset("imagefolder", data_dir=str(folder), split="train")
        ds = ds.cast_column("label", ClassLabel(names_file=str(folder / "classes.txt")))
        assert ds.num_rows == ipc * len(CLASSES)
        assert ds.features["label"].names == labels and "prompt" in ds.column_names
        assert all(ds.features["label"].int2str(row["label"]) == row["label_text"] for row in ds)
        assert set(ds["class"]) == set(CLASSES) and set(ds["seed"]) == {0}
        method = name.rsplit("-ipc", 1)[0]
        for cls, path in contract.read_manifest(run / "distilled" / method / f"ipc{ipc}" / "seed0.manifest.tsv"):
            assert (folder / cls / path.name).read_bytes() == path.read_bytes(), path
    vlcp = pd.read_json(run / "export" / "vlcp-prototype-ipc5-seed0" / "metadata.jsonl", lines=True)
    prototypes = contract.read_prototypes(run / "prototypes" / "ipc5" / "seed0" / "three.json")
    three = vlcp[vlcp["class"] == "three"].sort_values("file_name")
    assert list(three["prompt"]) == [p["prompt"] for p in prototypes]
    assert three["cluster_size"].min() >= 1 and three["source_image"].str.startswith("train/three/").all()
    random_rows = pd.read_json(run / "export" / "random-ipc1-seed0" / "metadata.jsonl", lines=True)
    assert random_rows["prompt"].isna().all() and random_rows["source_image"].notna().all()

    card = (run / "export" / "vlcp-prototype-ipc5-seed0" / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["task_categories"] == ["image-classification"] and "license" not in header
    assert "| minimax | convnet6 | 0 |" in card, "the set's accuracy rows"
    for stage in ("caption", "finetune", "encode", "cluster", "text_prototype", "synthesize"):
        assert f"### {stage}\n" in card, stage
    assert "strength: 0.6" in card and "fingerprint" in card

    captions = [json.loads(line) for line in (run / "export" / "captions.jsonl").read_text().splitlines()]
    assert len(captions) == 40 * len(CLASSES) and {"image", "class", "label", "label_text", "caption"} <= set(
        captions[0]
    )


@pytest.mark.workflow
def test_an_external_set_is_evaluated_like_the_runs_own(shared_run):
    """The demo's random set copied elsewhere: the same images under another name get the same numbers."""
    run, theirs = shared_run
    accuracy = contract.read_accuracy(run / "accuracy.csv")
    external = accuracy[accuracy.method == "theirs"].set_index("protocol")
    assert sorted(external.index) == ["minimax", "rded"] and set(external.ipc) == {"5"}, external
    random = accuracy[(accuracy.method == "random") & (accuracy.ipc == "5")].set_index("protocol")
    metrics = ["top1_best", "top1_last"]
    assert external.loc[["minimax", "rded"], metrics].equals(random.loc[["minimax", "rded"], metrics])
    summary = pd.read_csv(run / "summary.csv", dtype={"ipc": str})
    scored = summary[(summary.method == "theirs") & (summary.metric == "top1_best")]
    assert len(scored) == 2 and scored[["ior", "hlr", "lrs"]].notna().all().all(), scored
    assert (scored["ior"] == 0).all(), "the random set under another name does as well as random"
    assert (run / "report" / "grids" / "theirs-ipc5-seed0.png").is_file()
    assert all(
        str(path).startswith(str(theirs))
        for _, path in contract.read_manifest(run / "distilled/theirs/ipc5/seed0.manifest.tsv")
    )
    assert not any(p.name.endswith(".manifest.tsv") for p in theirs.parent.iterdir()), (
        "nothing written beside their set"
    )


def digit_set(folder, classes, count=2):
    for cls in classes:
        (folder / cls).mkdir(parents=True)
        for k in range(count):
            Image.new("RGB", (8, 8), (k * 40, 0, 0)).save(folder / cls / f"{k}.png")
    return folder


def test_a_bad_external_folder_stops_with_the_folder_named(tmp_path):
    classes = ["a", "b", "c"]
    good = digit_set(tmp_path / "good", classes)
    (good / "a" / "notes.txt").write_text("not part of the set")
    assert scan("good", good, classes, EXTENSIONS) == 2
    assert len(check_images("good", good, classes, EXTENSIONS, 10**6)) == 6

    missing = digit_set(tmp_path / "missing", ["a", "b"])
    with pytest.raises(
        ExternalSetError, match=r"external.x = .*missing.* no folder for 1 of the dataset's 3 classes \(c\)"
    ):
        scan("x", missing, classes, EXTENSIONS)
    extra = digit_set(tmp_path / "extra", [*classes, "zebra"])
    with pytest.raises(ExternalSetError, match="not classes of the dataset: zebra"):
        scan("x", extra, classes, EXTENSIONS)
    uneven = digit_set(tmp_path / "uneven", classes)
    Image.new("RGB", (8, 8)).save(uneven / "b" / "2.png")
    with pytest.raises(ExternalSetError, match="different numbers of images"):
        scan("x", uneven, classes, EXTENSIONS)
    with pytest.raises(ExternalSetError, match="one of the run's own methods"):
        scan("random", good, classes, EXTENSIONS)

    hostile = digit_set(tmp_path / "hostile", classes)
    (hostile / "b" / "1.png").write_bytes(b"#!/bin/sh\nrm -rf ~\n")
    with pytest.raises(ExternalSetError, match=r"hostile.*b/1\.png: not an image"):
        check_images("x", hostile, classes, EXTENSIONS, 10**6)
    cut = digit_set(tmp_path / "cut", classes, count=1)
    Image.frombytes("L", (64, 64), bytes(range(256)) * 16).save(cut / "c" / "0.png")
    data = (cut / "c" / "0.png").read_bytes()
    (cut / "c" / "0.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ExternalSetError, match=r"c/0\.png: corrupt or truncated"):
        check_images("x", cut, classes, EXTENSIONS, 10**6)
    bomb = digit_set(tmp_path / "bomb", classes, count=1)
    with pytest.raises(ExternalSetError, match="decompression bomb"):
        check_images("x", bomb, classes, EXTENSIONS, 50)


@pytest.mark.workflow
def test_the_plan_stops_on_an_external_set_without_every_class(tmp_path):
    theirs = digit_set(tmp_path / "theirs", CLASSES[:9])
    extra = tmp_path / "external.yaml"
    extra.write_text(yaml.safe_dump({"external": {"theirs": str(theirs)}}))
    result = snakemake(tmp_path / "work", "-n", "--configfile", DEMO, str(extra), check=False)
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert f"external.theirs = '{theirs}' has no folder for 1 of the dataset's 10 classes ({CLASSES[9]})" in said, said[
        -2000:
    ]


@pytest.mark.workflow
def test_regenerate_remakes_a_demo_image_byte_for_byte(demo_run, tmp_path):
    import subprocess
    import sys

    run = demo_run / "results" / "demo"
    for cls, ipc, cluster in (("seven", 1, 0), ("three", 5, 3)):
        out = tmp_path / f"{cls}-{ipc}-{cluster}.png"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "vlcp",
                "regenerate",
                "--run",
                str(run),
                "--class",
                cls,
                "--ipc",
                str(ipc),
                "--seed",
                "0",
                "--cluster",
                str(cluster),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
        )
        assert done.returncode == 0, done.stderr[-2000:]
        original = run / "distilled" / "vlcp-prototype" / f"ipc{ipc}" / "seed0" / cls / f"{cluster}.png"
        assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(original.read_bytes()).digest(), done.stderr[
            -1000:
        ]
        assert "identical to" in done.stderr
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "vlcp",
            "regenerate",
            "--run",
            str(run),
            "--class",
            "three",
            "--ipc",
            "5",
            "--seed",
            "0",
            "--cluster",
            "9",
            "--out",
            str(tmp_path / "x.png"),
        ],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
    )
    assert bad.returncode == 1 and "--cluster 9: three has clusters 0 to 4 at IPC 5" in bad.stderr, bad.stderr[-1000:]


@pytest.mark.workflow
def test_a_run_named_as_the_papers_dataset_gets_the_papers_numbers_beside_its_rows(shared_run):
    run, _ = shared_run
    summary = pd.read_csv(run / "summary.csv", dtype={"ipc": str})
    full = summary[(summary.method == "full") & (summary.metric == "top1_best")].iloc[0]
    # the paper, Table 1: ImageWoof, ConvNet-6 on the whole train set, 86.4 +- 0.2
    assert (full.paper_table, full.paper_mean, full.paper_std) == (1, 86.4, 0.2)
    assert full.paper_difference == round(full["mean"] - 86.4, 2) and full.paper_verdict == "not reproduced"
    assert summary[summary.method != "full"]["paper_verdict"].isna().all(), "the demo's IPCs 1 and 5 are in no table"
    markdown = (run / "summary.md").read_text()
    assert markdown.startswith("### The paper's numbers (imagewoof)")
    assert "| minimax | convnet6 | full | all |" in markdown and "| not reproduced |" in markdown
    assert "Table 1: minimax, convnet6, vlcp-prototype, IPC 10: 34.8 ± 2.4" in markdown, "a cell the config can add"

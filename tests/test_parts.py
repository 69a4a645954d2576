"""A job of several classes (config classes_per_job): per-class options, its record, and reruns
that replace what the part wrote before and nothing else. Run through the cluster stage's CLI."""

import argparse

import pytest
import torch

from vlcp import cluster, contract
from vlcp.atomic import OutputExistsError
from vlcp.errors import VlcpError
from vlcp.parts import each_class, ledger_path

CLASSES = ("cat", "dog", "owl")


@pytest.fixture
def latents(tmp_path):
    paths = []
    for i, cls in enumerate(CLASSES):
        generator = torch.Generator().manual_seed(i)
        images = [f"train/{cls}/{k}.png" for k in range(12)]
        path = tmp_path / "latents" / f"{cls}.safetensors"
        contract.write_latents(path, {"latents": torch.randn(12, 4, 4, 4, generator=generator)}, images)
        paths.append(path)
    return paths


def cluster_part(tmp_path, latents, marker=True):
    out = [tmp_path / "clusters" / f"{cls}.json" for cls in CLASSES]
    centres = [tmp_path / "clusters" / f"{cls}.safetensors" for cls in CLASSES]
    argv = [
        "--latents",
        *map(str, latents),
        "--ipc",
        "2",
        "--seed",
        "0",
        "--contamination",
        "0",
        "--out",
        *map(str, out),
        "--centres",
        *map(str, centres),
    ]
    if marker:
        argv += ["--part-marker", str(tmp_path / "parts" / "part1.tsv")]
    cluster.main(argv)
    return out, centres


def test_one_job_writes_every_class_and_then_its_record(tmp_path, latents):
    out, centres = cluster_part(tmp_path, latents)
    for cls, path in zip(CLASSES, out):
        clusters, _ = contract.read_clusters(path)
        assert sum(map(len, clusters["members"])) == 12, cls
    record = (tmp_path / "parts" / "part1.tsv").read_text().splitlines()
    assert record[0] == "out\tcentres"
    assert record[1:] == [f"{o}\t{c}" for o, c in zip(out, centres)]


def test_a_part_of_three_equals_three_jobs_of_one(tmp_path, latents):
    cluster_part(tmp_path / "a", latents)
    for latent, cls in zip(latents, CLASSES):
        single = tmp_path / "b" / f"{cls}.json"
        cluster.main(
            [
                "--latents",
                str(latent),
                "--ipc",
                "2",
                "--seed",
                "0",
                "--contamination",
                "0",
                "--out",
                str(single),
                "--centres",
                str(single.with_suffix(".safetensors")),
            ]
        )
        assert (
            contract.read_clusters(single)[0] == contract.read_clusters(tmp_path / "a" / "clusters" / f"{cls}.json")[0]
        )


def test_a_rerun_replaces_what_the_part_wrote(tmp_path, latents):
    out, _ = cluster_part(tmp_path, latents)
    (tmp_path / "parts" / "part1.tsv").unlink()  # Snakemake removes a job's declared output before rerunning it
    expected = out[1].read_text()
    out[1].write_text("stale")  # what an earlier run of this part left, with other settings
    cluster_part(tmp_path, latents)
    assert out[1].read_text() == expected and (tmp_path / "parts" / "part1.tsv").is_file()
    assert sorted(ledger_path(tmp_path / "parts" / "part1.tsv").read_text().split()) == sorted(
        str(p) for p in [*out, *(o.with_suffix(".safetensors") for o in out)]
    )


def test_a_file_the_part_did_not_write_is_left_alone(tmp_path, latents):
    foreign = tmp_path / "clusters" / "dog.json"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("mine")
    with pytest.raises(
        OutputExistsError, match=r"dog\.json already exists and was not written by the job of part1\.tsv"
    ):
        cluster_part(tmp_path, latents)
    assert foreign.read_text() == "mine"
    assert not (tmp_path / "clusters" / "cat.json").exists()  # stopped before writing anything
    assert not (tmp_path / "parts" / "part1.tsv").exists()


def test_a_job_stopped_part_way_leaves_no_record(tmp_path):
    marker = tmp_path / "part1.tsv"
    args = argparse.Namespace(out=[tmp_path / "a", tmp_path / "b"], part_marker=marker, seed=0)
    done = []
    with pytest.raises(RuntimeError):
        for one in each_class(args, ("out",), outputs=("out",)):
            one.out.write_text("x")
            done.append(one.out)
            raise RuntimeError("killed after the first class")
    assert done == [tmp_path / "a"] and not marker.exists()
    assert ledger_path(marker).read_text().split() == [str(tmp_path / "a"), str(tmp_path / "b")]


def test_per_class_options_must_have_one_value_per_class():
    args = argparse.Namespace(latents=["a", "b"], out=["x"], centres=["y", "z"], part_marker=None)
    with pytest.raises(VlcpError, match=r"--latents \(2\), --out \(1\), --centres \(2\)"):
        list(each_class(args, ("latents", "out", "centres")))

"""A job of several classes (config classes_per_job): per-class options, run through the cluster stage's
CLI; and the folders a user reads, gathered from the parts' folders (vlcp.gather)."""

import argparse

import pytest
import torch

from vlcp import cluster, contract, gather
from vlcp.atomic import OutputExistsError
from vlcp.errors import VlcpError
from vlcp.parts import each_class

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


def cluster_part(tmp_path, latents):
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
    cluster.main(argv)
    return out, centres


def test_one_job_writes_every_class(tmp_path, latents):
    out, centres = cluster_part(tmp_path, latents)
    for cls, path, centre in zip(CLASSES, out, centres):
        clusters, centres_of = contract.read_clusters(path, centre)
        assert sum(map(len, clusters["members"])) == 12 and len(centres_of) == 2, cls


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


def test_a_folder_is_gathered_from_its_parts_as_hard_links(tmp_path):
    parts = [tmp_path / "parts" / name for name in ("part1", "part2")]
    for part, classes in zip(parts, (["cat", "dog"], ["owl"])):
        for cls in classes:
            (part / cls).mkdir(parents=True)
            (part / cls / "0.png").write_bytes(cls.encode())
            (part / f"{cls}.json").write_text(cls)
        (part / ".snakemake_timestamp").touch()  # Snakemake's mark of a folder output: each folder has its own
    out = tmp_path / "distilled"
    assert gather.gather(parts, out) == 6
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "cat.json",
        "cat/0.png",
        "dog.json",
        "dog/0.png",
        "owl.json",
        "owl/0.png",
    ]
    assert (out / "owl" / "0.png").stat().st_ino == (parts[1] / "owl" / "0.png").stat().st_ino
    with pytest.raises(OutputExistsError, match="distilled"):  # never over what is there
        gather.gather(parts, out)


def test_two_parts_with_one_name_are_stopped_before_anything_is_written(tmp_path):
    for part in ("part1", "part2"):
        (tmp_path / part).mkdir()
        (tmp_path / part / "cat.json").write_text(part)
    with pytest.raises(VlcpError, match=r"part2/cat\.json and .*part1/cat\.json have the same name"):
        gather.gather([tmp_path / "part1", tmp_path / "part2"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_per_class_options_must_have_one_value_per_class():
    args = argparse.Namespace(latents=["a", "b"], out=["x"], centres=["y", "z"])
    with pytest.raises(VlcpError, match=r"--latents \(2\), --out \(1\), --centres \(2\)"):
        list(each_class(args, ("latents", "out", "centres")))

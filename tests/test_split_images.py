"""Whole splits too large for memory: read from disk batch by batch, with the same numbers as in memory."""

import pytest
import torch

from conftest import REPO, minimax_settings
from vlcp import contract, demo_data, split_images
from vlcp.evaluate import image_tensor, resized, train_and_test
from vlcp.index import index_class


@pytest.fixture(scope="module")
def demo_split(tmp_path_factory):
    """The demo digits, 8 train and 4 val images per class at 32 px: (root, train paths, labels, val paths, labels)."""
    root = tmp_path_factory.mktemp("split") / "data"
    demo_data.write_demo(root, train_per_class=8, val_per_class=4, image_size=32, seed=0)
    found = {"train": ([], []), "val": ([], [])}
    for label, cls in enumerate(demo_data.CLASSES):
        for split, (paths, labels) in found.items():
            records, _ = index_class(root, split, cls, cls, [".png"], 10**6)
            contract.write_index(root.parent / f"{split}-{cls}.jsonl", records)
            paths += [root / r["image"] for r in records]
            labels += [label] * len(records)
    return root, *found["train"], *found["val"]


def test_the_memory_rule_is_computed_from_the_set_and_the_free_memory():
    size = split_images.set_bytes(1_281_167, 224)  # ImageNet-1K's train split at 224 px
    assert round(size / 1e9) == 193
    assert not split_images.fits(size, "cpu", host_bytes=256 * 2**30), "stacking needs twice the set on the host"
    assert split_images.fits(size, "cpu", host_bytes=4 * size) and not split_images.fits(
        size, "cpu", host_bytes=4 * size - 1
    )
    # on a GPU the set must also fit in half the free device memory
    assert not split_images.fits(size, "cuda", host_bytes=4 * size, device_bytes=141 * 10**9)
    assert split_images.fits(10**9, "cuda", host_bytes=4 * 10**9, device_bytes=2 * 10**9)
    assert split_images.host_available() > 0


def test_a_streamed_set_gives_the_batches_of_the_set_in_memory(demo_split):
    _, paths, _, _, _ = demo_split
    whole = image_tensor(paths, 24)
    streamed = split_images.load_images(paths, resized(24), 24, "cpu", "stream")
    assert isinstance(streamed, split_images.StreamedImages) and len(streamed) == len(whole)
    index = torch.randperm(len(paths), generator=torch.Generator().manual_seed(0))[:13]
    assert torch.equal(streamed[index], whole[index])
    assert torch.equal(streamed[5:17], whole[5:17]) and torch.equal(streamed[:3], whole[:3])
    assert torch.equal(split_images.load_images(paths, resized(24), 24, "cpu", "memory"), whole)
    assert torch.equal(split_images.load_images(paths, resized(24), 24, "cpu", "auto"), whole), (
        "a small set stays in memory"
    )
    with pytest.raises(ValueError, match="image loading is one of"):
        split_images.load_images(paths, resized(24), 24, "cpu", "disk")


def test_training_on_a_streamed_split_gives_the_same_numbers(demo_split):
    _, train_paths, train_labels, val_paths, val_labels = demo_split
    settings = minimax_settings(epochs=3, batch_size=16, test_every=1, test_batch_size=7)
    results, weights = [], []
    for loading in ("memory", "stream"):
        train = split_images.load_images(train_paths, resized(32), 32, "cpu", loading)
        val = split_images.load_images(val_paths, resized(32), 32, "cpu", loading)
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
        results.append(
            train_and_test(
                train,
                torch.tensor(train_labels),
                val,
                torch.tensor(val_labels),
                "linear",
                10,
                settings,
                seed=0,
                progress=False,
                model=model,
            )
        )
        weights.append(model[1].weight.detach().clone())
    assert results[0] == results[1] and torch.equal(weights[0], weights[1])


def test_the_teacher_rule_streams_when_told_and_trains_the_same_teacher(demo_split, tmp_path):
    from safetensors.torch import load_file

    from vlcp import teacher

    root, *_ = demo_split
    common = [
        "--train-index",
        *[str(root.parent / f"train-{c}.jsonl") for c in demo_data.CLASSES],
        "--val-index",
        *[str(root.parent / f"val-{c}.jsonl") for c in demo_data.CLASSES],
        "--root",
        str(root),
        "--architecture",
        "convnet6",
        "--epochs",
        "1",
        "--seed",
        "0",
        "--test-every",
        "1",
        "--batch-size",
        "16",
        "--input-size",
        "32",
        "--learning-rate",
        "0.01",
        "--weight-decay",
        "0.0005",
    ]
    for loading in ("memory", "stream"):
        teacher.main([*common, "--image-loading", loading, "--out", str(tmp_path / f"{loading}.safetensors")])
    memory, stream = load_file(tmp_path / "memory.safetensors"), load_file(tmp_path / "stream.safetensors")
    assert memory.keys() == stream.keys() and all(torch.equal(memory[k], stream[k]) for k in memory)


@pytest.mark.slow
def test_the_bench_reports_memory_that_does_not_grow_with_the_split(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "whole_split_memory.py"),
            "--images",
            "200",
            "800",
            "--side",
            "32",
            "--work",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "peak host RSS" in done.stdout and "ratio 800 / 200 images" in done.stdout, done.stdout

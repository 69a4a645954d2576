"""The GPU suite: every GPU stage on full-size architectures, as a real run meets them.

SD v1.5's U-Net, VAE and text encoder at 512 px and LLaVA-1.5-7B (CLIP ViT-L/14 at 336 px,
Vicuna-7B) with random weights built from their configs and saved in the Hugging Face layout, so
each stage loads them through its own ``from_pretrained`` call. Run on a CUDA machine:

    pytest -m gpu                 # or: python bench/gpu.py, which also runs bench/run.py --full

Skipped where CUDA is absent. ``VLCP_GPU_LLAVA_LAYERS=N`` shrinks only LLaVA's language model
to N layers for a GPU under 24 GB. Each test appends its figures (time, peak GPU memory) as a
JSON line to ``$VLCP_GPU_REPORT`` when set.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vlcp import caption, cluster, contract, demo_data, encode, evaluate, full_models, synthesize
from vlcp.index import index_class

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="GPU suite: needs a CUDA GPU (run `pytest -m gpu` on one)"
    ),
]

HERE = Path(__file__).parent
CLASSES = ("three", "seven")
RESOLUTION = 512


def record(stage, **figures):
    """Print a stage's figures, and append them to $VLCP_GPU_REPORT for bench/gpu.py."""
    row = {"stage": stage, "device": torch.cuda.get_device_name(), **figures}
    print(json.dumps(row))
    if os.environ.get("VLCP_GPU_REPORT"):
        with open(os.environ["VLCP_GPU_REPORT"], "a") as handle:
            handle.write(json.dumps(row) + "\n")


def timed_peak(fn):
    """(result, seconds, peak GPU GiB) of ``fn()`` in this process."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = fn()
    torch.cuda.synchronize()
    return result, time.perf_counter() - start, torch.cuda.max_memory_allocated() / 2**30


def stage_env():
    return dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(HERE.parent))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Two demo classes at 512 px, indexed, and SD v1.5's architecture saved as a pipeline folder."""
    root = tmp_path_factory.mktemp("gpu")
    demo_data.write_demo(root / "data", train_per_class=8, val_per_class=2, image_size=RESOLUTION, seed=0)
    for cls in CLASSES:
        records, _ = index_class(root / "data", "train", cls, demo_data.LABELS[cls], [".png"], 10**8)
        contract.write_index(root / "index" / f"{cls}.jsonl", records)
        contract.write_captions(
            root / "captions" / f"{cls}.jsonl",
            [{"image": r["image"], "caption": f"a handwritten {cls}, stroke {i}"} for i, r in enumerate(records)],
        )
    full_models.build_stable_diffusion().save_pretrained(root / "sd", safe_serialization=True)
    return root


def test_caption_one_batch_with_llava_1_5_7b(world, tmp_path):
    layers = int(os.environ.get("VLCP_GPU_LLAVA_LAYERS", "0")) or None
    model, processor = full_models.build_llava("cuda", torch.bfloat16, text_layers=layers)
    model.save_pretrained(tmp_path / "llava", safe_serialization=True)
    processor.save_pretrained(tmp_path / "llava")
    del model
    torch.cuda.empty_cache()
    out = tmp_path / "three.jsonl"
    args = [
        "--index",
        str(world / "index" / "three.jsonl"),
        "--root",
        str(world / "data"),
        "--model",
        str(tmp_path / "llava"),
        "--prompt",
        "Describe the physical appearance of the {label} in the image.",
        "--batch-size",
        "8",
        "--max-new-tokens",
        "32",
        "--work",
        str(tmp_path / "w"),
        "--out",
        str(out),
    ]
    _, seconds, peak = timed_peak(lambda: caption.main(args))
    rows = contract.read_captions(out, [r["image"] for r in contract.read_index(world / "index" / "three.jsonl")])
    assert len(rows) == 8 and all(r["caption"].strip() for r in rows)
    record(
        "caption",
        images=8,
        max_new_tokens=32,
        seconds=round(seconds, 2),
        peak_gib=round(peak, 1),
        llava_text_layers=layers or 32,
        dtype=str(caption.dtype_for("auto", torch.device("cuda"))),
    )
    shutil.rmtree(tmp_path / "llava")


def encode_args(world, indexes, outs):
    """vlcp.encode's command line at the suite's resolution, clustering and fine-tune latents alike."""
    resolution = str(RESOLUTION)
    options = ["--resolution", resolution, "--resize", "crop", "--train-resolution", resolution, "--batch-size", "8"]
    return [
        "--index",
        *map(str, indexes),
        "--root",
        str(world / "data"),
        "--model",
        str(world / "sd"),
        *options,
        "--flip",
        "--out",
        *map(str, outs),
    ]


@pytest.fixture(scope="module")
def latents(world):
    """Both classes encoded at 512 px by the full VAE, with the mirrored images."""
    outs = [world / "latents" / f"{cls}.safetensors" for cls in CLASSES]
    args = encode_args(world, [world / "index" / f"{c}.jsonl" for c in CLASSES], outs)
    _, seconds, peak = timed_peak(lambda: encode.main(args))
    record("encode", images=16 * 2, seconds=round(seconds, 2), peak_gib=round(peak, 1))
    return outs


def test_encode_at_512_px(world, latents, tmp_path):
    tensors, images = contract.read_latents(latents[0])
    assert tensors["latents"].shape == (8, 4, 64, 64) and tensors["latents_flipped"].shape == (8, 4, 64, 64)
    assert torch.isfinite(tensors["latents"]).all()
    again = tmp_path / "again.safetensors"
    encode.main(encode_args(world, [world / "index" / "three.jsonl"], [again]))
    assert torch.allclose(contract.read_latents(again)[0]["latents"], tensors["latents"], atol=1e-4), (
        "float32 VAE repeats"
    )


def finetune_run(world, latents, out, work, kill_after=0, count=None, checkpointing_steps=1):
    args = [
        "--model",
        str(world / "sd"),
        "--index",
        *[str(world / "index" / f"{c}.jsonl") for c in CLASSES],
        "--captions",
        *[str(world / "captions" / f"{c}.jsonl") for c in CLASSES],
        "--latents",
        *map(str, latents),
        "--root",
        str(world / "data"),
        "--out",
        str(out),
        "--work",
        str(work),
        "--resolution",
        str(RESOLUTION),
        "--train-batch-size",
        "4",
        "--gradient-accumulation-steps",
        "1",
        "--max-train-steps",
        "3",
        "--checkpointing-steps",
        str(checkpointing_steps),
        "--checkpoints-total-limit",
        "1",
        "--mixed-precision",
        "fp16",
        "--use-ema",
        "--gradient-checkpointing",
    ]
    cmd = [
        sys.executable,
        str(HERE / "killed_run.py"),
        "vlcp.finetune",
        "save_checkpoint",
        str(kill_after),
        str(count or work.parent / "count"),
        "--",
        *args,
    ]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=stage_env())
    return result, time.perf_counter() - start


def unet_delta(pipeline, base):
    from safetensors.torch import load_file

    name = "unet/diffusion_pytorch_model.safetensors"
    trained, start = load_file(str(pipeline / name)), load_file(str(base / name))
    return torch.cat([(trained[k].double() - start[k].double()).flatten() for k in sorted(start)])


@pytest.fixture(scope="module")
def finetuned(world, latents, tmp_path_factory):
    """SD v1.5 fine-tuned 3 steps with EMA: killed after its first checkpoint, then resumed."""
    root = tmp_path_factory.mktemp("finetune")
    killed, _ = finetune_run(world, latents, root / "resumed", root / "work", kill_after=1, count=root / "c1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed, seconds = finetune_run(world, latents, root / "resumed", root / "work", count=root / "c2")
    shutil.rmtree(root / "work")
    return root, resumed, seconds


def test_finetune_with_ema_resumes_on_the_gpu(world, latents, finetuned, tmp_path):
    root, resumed, seconds = finetuned
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from checkpoint-1 (step 1 of 3)" in resumed.stderr
    straight, straight_seconds = finetune_run(
        world, latents, tmp_path / "straight", tmp_path / "work", checkpointing_steps=1000
    )
    assert straight.returncode == 0, straight.stderr[-3000:]
    shutil.rmtree(tmp_path / "work")
    a, b = unet_delta(root / "resumed", world / "sd"), unet_delta(tmp_path / "straight", world / "sd")
    assert a.abs().max() > 0, "the U-Net must have trained"
    cosine = float(a @ b / (a.norm() * b.norm()))
    assert cosine > 0.99, f"resumed and uninterrupted updates differ (cosine {cosine:.4f})"
    peak = next((ln for ln in straight.stderr.splitlines() if ln.startswith("peak GPU memory")), "")
    record(
        "finetune",
        steps=3,
        train_batch_size=4,
        resumed_seconds=round(seconds, 1),
        uninterrupted_seconds=round(straight_seconds, 1),
        update_cosine=round(cosine, 5),
        log=peak,
    )


def test_synthesize_one_batch(world, latents, finetuned, tmp_path):
    root, resumed, _ = finetuned
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    clusters, centres = tmp_path / "three.json", tmp_path / "three.safetensors"
    cluster.main(
        ["--latents", str(latents[0]), "--ipc", "4", "--seed", "0", "--out", str(clusters), "--centres", str(centres)]
    )
    contract.write_prototypes(
        tmp_path / "prototypes.json",
        [
            {
                "prompt": f"a photo of a handwritten three, variant {k}",
                "image": "x",
                "keywords": [],
                "nonrepresentative": [],
            }
            for k in range(4)
        ],
    )
    out = tmp_path / "out"
    args = [
        "--model",
        str(root / "resumed"),
        "--clusters",
        str(clusters),
        "--centres",
        str(centres),
        "--prototypes",
        str(tmp_path / "prototypes.json"),
        "--class",
        "three",
        "--seed",
        "0",
        "--num-inference-steps",
        "50",
        "--batch-size",
        "4",
        "--size",
        "256",
        "--work",
        str(tmp_path / "work"),
        "--out",
        str(out),
    ]
    _, seconds, peak = timed_peak(lambda: synthesize.main(args))
    images = sorted(out.glob("*.png"))
    assert len(images) == 4 and all(Image.open(p).size == (256, 256) for p in images)
    record(
        "synthesize",
        images=4,
        denoising_steps=35,
        seconds=round(seconds, 2),
        peak_gib=round(peak, 1),
        dtype=str(synthesize.dtype_for("auto", torch.device("cuda"), auto_bf16=False)),
    )


@pytest.fixture(scope="module")
def evaluation_set(tmp_path_factory):
    """An ImageFolder of 10 classes: 10 train images each at 256 px, and 60 val images each (600, over the
    test batch)."""
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    classes = [f"c{k}" for k in range(10)]
    for split, count in (("train", 10), ("val", 60)):
        for k, cls in enumerate(classes):
            (root / split / cls).mkdir(parents=True)
            for i in range(count):
                base = np.full((256, 256, 3), 25 * k, dtype=np.uint8)
                noise = rng.integers(0, 60, (256, 256, 3), dtype=np.uint8)
                Image.fromarray(base + noise).save(root / split / cls / f"{i}.png")
    for cls in classes:
        records, _ = index_class(root, "val", cls, cls, [".png"], 10**8)
        contract.write_index(root / "index" / f"{cls}.jsonl", records)
    return root, classes


@pytest.mark.parametrize("model", ["convnet6", "resnetap10", "resnet18"])
def test_evaluate_at_224_px_with_the_presets_test_batch(evaluation_set, model, tmp_path):
    root, classes = evaluation_set
    out = tmp_path / "eval.csv"
    args = [
        "--train-dir",
        str(root / "train"),
        "--val-index",
        *[str(root / "index" / f"{c}.jsonl") for c in classes],
        "--root",
        str(root),
        "--model",
        model,
        "--seed",
        "0",
        "--method",
        "gpu-suite",
        "--ipc",
        "10",
        "--distill-seed",
        "0",
        "--epochs",
        "4",
        "--test-every",
        "2",
        "--input-size",
        "224",
        "--batch-size",
        "64",
        "--learning-rate",
        "0.01",
        "--weight-decay",
        "5e-4",
        "--test-batch-size",
        "500",
        "--out",
        str(out),
    ]
    _, seconds, peak = timed_peak(lambda: evaluate.main(args))
    row = contract.read_accuracy(out).iloc[0]
    assert row["test_images"] == 600 and row["train_images"] == 100 and row["device"] == "cuda"
    assert 0 <= row["top1_last"] <= 100
    record(
        "evaluate",
        model=model,
        epochs=4,
        train_images=100,
        test_images=600,
        seconds=round(seconds, 2),
        peak_gib=round(peak, 1),
        top1_last=float(row["top1_last"]),
    )

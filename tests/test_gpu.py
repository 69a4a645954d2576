"""The GPU suite: every GPU stage on full-size architectures, as a real run meets them.

SD v1.5 (U-Net, VAE, text encoder, safety checker) and LLaVA-1.5-7B (CLIP ViT-L/14 at 336 px,
Vicuna-7B) with random weights, saved once per session in their hub repositories' file layouts
(``vlcp.full_models.hub_models``), so each stage loads them through its own ``from_pretrained`` call.
The cheapest parts run first; each test appends its figures (time, peak memory) as a JSON line to
``$VLCP_GPU_REPORT`` the moment it has them, so a session stopped at its limit keeps what it measured.
``python bench/gpu.py`` runs it on a GPU node; ``pytest -m gpu`` runs it here on a CUDA GPU.

Settings, from the environment (bench/gpu.py sets them):
    VLCP_GPU_DEVICE        cuda (default; the suite is skipped without one) or cpu, for a rehearsal
    VLCP_GPU_RESOLUTION    side of the Stable Diffusion images (default 512)
    VLCP_GPU_LLAVA_LAYERS  the language model's depth (default: all 32 on cuda, 2 on cpu)
    VLCP_FULLSIZE_MODELS   where the models are saved, or found already saved (default: a temporary folder)
    VLCP_GPU_DEADLINE      a Unix time: a test whose estimate would end past it is skipped, and says so
"""

import json
import os
import resource
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

DEVICE = os.environ.get("VLCP_GPU_DEVICE", "cuda")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        DEVICE == "cuda" and not torch.cuda.is_available(),
        reason="GPU suite: needs a CUDA GPU (run `pytest -m gpu` on one, or bench/gpu.py --device cpu)",
    ),
]

HERE = Path(__file__).parent
CLASSES = ("three", "seven")
RESOLUTION = int(os.environ.get("VLCP_GPU_RESOLUTION", "512"))
LLAVA_LAYERS = int(os.environ.get("VLCP_GPU_LLAVA_LAYERS", "0" if DEVICE == "cuda" else "2")) or None
ON_GPU = DEVICE == "cuda"

# Seconds each part is expected to take, by device (bench/README.md says how they were estimated): a
# part is skipped rather than started when it would end past VLCP_GPU_DEADLINE.
ESTIMATES = {
    "cuda": {"models": 180, "encode": 20, "synthesize": 40, "caption": 60, "evaluate": 40, "finetune": 120},
    "cpu": {"models": 150, "encode": 20, "synthesize": 30, "caption": 40, "evaluate": 30, "finetune": 150},
}


def record(stage, **figures):
    """Print a part's figures, and append them at once to $VLCP_GPU_REPORT for bench/gpu.py."""
    name = torch.cuda.get_device_name() if ON_GPU else "cpu"
    row = {"stage": stage, "run_id": os.environ.get("VLCP_GPU_RUN_ID"), "device": name, "resolution": RESOLUTION}
    row.update(figures)
    print(json.dumps(row), flush=True)
    if os.environ.get("VLCP_GPU_REPORT"):
        with open(os.environ["VLCP_GPU_REPORT"], "a") as handle:
            handle.write(json.dumps(row) + "\n")


def budget(stage):
    """Skip ``stage`` (and record it as skipped) when its estimate would end past the deadline."""
    deadline = float(os.environ.get("VLCP_GPU_DEADLINE", "inf"))
    need = ESTIMATES[DEVICE][stage]
    if time.time() + need > deadline:
        record(stage, skipped=f"not started: its estimate, {need} s, would end past the deadline")
        pytest.skip(f"{stage}: not enough time left in the allocation")


def host_peak_gib():
    """The largest resident memory of this process and of its finished children so far, in GiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 2**20, 1)


def timed_peak(fn):
    """(result, seconds, peak GiB) of ``fn()``: GPU memory on a GPU, else the process's resident memory."""
    if ON_GPU:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = fn()
    if ON_GPU:
        torch.cuda.synchronize()
        peak = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    else:
        peak = host_peak_gib()
    return result, round(time.perf_counter() - start, 2), peak


def stage_env():
    """A stage's process: this checkout after what is already on the path (bench/gpu.py's wheels come first)."""
    devices = {} if ON_GPU else {"CUDA_VISIBLE_DEVICES": ""}
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(HERE.parent)) if p)
    return dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=path, **devices)


@pytest.fixture(scope="session", autouse=True)
def on_device():
    """The stages pick the first GPU, else the CPU: a CPU rehearsal hides the GPU."""
    if not ON_GPU:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    yield


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """SD v1.5 and LLaVA-1.5-7B in their hub layouts, saved once (or found in $VLCP_FULLSIZE_MODELS)."""
    budget("models")
    root = Path(os.environ.get("VLCP_FULLSIZE_MODELS") or tmp_path_factory.mktemp("hub-models"))
    (sd, llava), seconds, _ = timed_peak(lambda: full_models.hub_models(root, LLAVA_LAYERS, on=DEVICE))
    size = sum(p.stat().st_size for p in (*sd.rglob("*"), *llava.rglob("*")) if p.is_file())
    record("models", seconds=seconds, saved_gib=round(size / 2**30, 1), llava_text_layers=LLAVA_LAYERS or 32)
    return sd, llava


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """Two demo classes at the suite's resolution, indexed and captioned."""
    root = tmp_path_factory.mktemp("gpu")
    demo_data.write_demo(root / "data", train_per_class=8, val_per_class=2, image_size=RESOLUTION, seed=0)
    for cls in CLASSES:
        records, _ = index_class(root / "data", "train", cls, demo_data.LABELS[cls], [".png"], 10**8)
        contract.write_index(root / "index" / f"{cls}.jsonl", records)
        contract.write_captions(
            root / "captions" / f"{cls}.jsonl",
            [{"image": r["image"], "caption": f"a handwritten {cls}, stroke {i}"} for i, r in enumerate(records)],
        )
    return root


def encode_args(world, sd, indexes, outs):
    """vlcp.encode's command line at the suite's resolution, clustering and fine-tune latents alike."""
    side = str(RESOLUTION)
    options = ["--resolution", side, "--resize", "crop", "--train-resolution", side, "--batch-size", "8"]
    return ["--index", *map(str, indexes), "--root", str(world / "data"), "--model", str(sd), *options, "--flip"] + [
        "--out",
        *map(str, outs),
    ]


@pytest.fixture(scope="session")
def latents(world, models):
    """Both classes encoded by the full VAE, with the mirrored images."""
    budget("encode")
    outs = [world / "latents" / f"{cls}.safetensors" for cls in CLASSES]
    args = encode_args(world, models[0], [world / "index" / f"{c}.jsonl" for c in CLASSES], outs)
    _, seconds, peak = timed_peak(lambda: encode.main(args))
    record("encode", images=16 * 2, seconds=seconds, peak_gib=peak)
    return outs


def test_encode(world, models, latents, tmp_path):
    tensors, _ = contract.read_latents(latents[0])
    side = RESOLUTION // 8
    assert tensors["latents"].shape == (8, 4, side, side) and tensors["latents_flipped"].shape == (8, 4, side, side)
    assert torch.isfinite(tensors["latents"]).all()
    again = tmp_path / "again.safetensors"
    encode.main(encode_args(world, models[0], [world / "index" / "three.jsonl"], [again]))
    assert torch.allclose(contract.read_latents(again)[0]["latents"], tensors["latents"], atol=1e-4), (
        "float32 VAE repeats"
    )


def test_synthesize_from_the_fp16_files(models, latents, tmp_path):
    """img2img from cluster centres with the base model's fp16 weight files (D4M's way: no fine-tune)."""
    budget("synthesize")
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
        ],  # fmt: skip
    )
    steps = 50 if ON_GPU else 4
    args = ["--model", str(models[0]), "--variant", "fp16", "--clusters", str(clusters), "--centres", str(centres)]
    args += ["--prototypes", str(tmp_path / "prototypes.json"), "--class", "three", "--seed", "0"]
    args += ["--num-inference-steps", str(steps), "--batch-size", "4", "--size", "256"]
    args += ["--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
    _, seconds, peak = timed_peak(lambda: synthesize.main(args))
    images = sorted((tmp_path / "out").glob("*.png"))
    assert len(images) == 4 and all(Image.open(p).size == (256, 256) for p in images)
    record(
        "synthesize",
        images=4,
        denoising_steps=int(steps * 0.7),
        seconds=seconds,
        peak_gib=peak,
        dtype=str(synthesize.dtype_for("auto", torch.device(DEVICE), auto_bf16=False)),
    )


def test_caption_one_batch(world, models, tmp_path):
    budget("caption")
    images, tokens = (8, 32) if ON_GPU else (1, 8)
    index = tmp_path / "three.jsonl"
    contract.write_index(index, contract.read_index(world / "index" / "three.jsonl")[:images])
    out = tmp_path / "three-captions.jsonl"
    args = ["--index", str(index), "--root", str(world / "data"), "--model", str(models[1])]
    args += ["--prompt", "Describe the physical appearance of the {label} in the image."]
    args += ["--batch-size", str(images), "--max-new-tokens", str(tokens), "--work", str(tmp_path / "w")]
    args += ["--out", str(out)]
    _, seconds, peak = timed_peak(lambda: caption.main(args))
    rows = contract.read_captions(out, [r["image"] for r in contract.read_index(index)])
    assert len(rows) == images
    record(
        "caption",
        images=images,
        max_new_tokens=tokens,
        seconds=seconds,
        peak_gib=peak,
        llava_text_layers=LLAVA_LAYERS or 32,
        dtype=str(caption.dtype_for("float16", torch.device(DEVICE))),
    )


@pytest.fixture(scope="session")
def evaluation_set(tmp_path_factory):
    """An ImageFolder of 10 classes: 10 train images each, and 60 val images each (600, over the test batch)."""
    root = tmp_path_factory.mktemp("eval")
    side = 256 if ON_GPU else 32
    rng = np.random.default_rng(0)
    classes = [f"c{k}" for k in range(10)]
    for split, count in (("train", 10), ("val", 60 if ON_GPU else 6)):
        for k, cls in enumerate(classes):
            (root / split / cls).mkdir(parents=True)
            for i in range(count):
                base = np.full((side, side, 3), 25 * k, dtype=np.uint8)
                noise = rng.integers(0, 60, (side, side, 3), dtype=np.uint8)
                Image.fromarray(base + noise).save(root / split / cls / f"{i}.png")
    for cls in classes:
        records, _ = index_class(root, "val", cls, cls, [".png"], 10**8)
        contract.write_index(root / "index" / f"{cls}.jsonl", records)
    return root, classes


@pytest.mark.parametrize("model", ["convnet6", "resnetap10", "resnet18"] if ON_GPU else ["resnet18"])
def test_evaluate_with_the_presets_test_batch(evaluation_set, model, tmp_path):
    budget("evaluate")
    root, classes = evaluation_set
    side, val = (224, 600) if ON_GPU else (32, 60)
    out = tmp_path / "eval.csv"
    args = ["--train-dir", str(root / "train"), "--val-index", *[str(root / "index" / f"{c}.jsonl") for c in classes]]
    args += ["--root", str(root), "--model", model, "--seed", "0", "--method", "gpu-suite", "--ipc", "10"]
    args += ["--distill-seed", "0", "--epochs", "4", "--test-every", "2", "--input-size", str(side)]
    args += ["--batch-size", "64", "--learning-rate", "0.01", "--weight-decay", "5e-4", "--test-batch-size", "500"]
    _, seconds, peak = timed_peak(lambda: evaluate.main([*args, "--out", str(out)]))
    row = contract.read_accuracy(out).iloc[0]
    assert row["test_images"] == val and row["train_images"] == 100 and row["device"] == DEVICE
    assert 0 <= row["top1_last"] <= 100
    record(
        "evaluate",
        model=model,
        input_size=side,
        epochs=4,
        train_images=100,
        test_images=val,
        seconds=seconds,
        peak_gib=peak,
    )


def test_finetune_with_ema(world, models, latents, tmp_path):
    """A few full-width steps with EMA and gradient checkpointing, in fp16 mixed precision on a GPU (the
    authors' recipe); the last thing saved is the pipeline."""
    budget("finetune")
    out, work = tmp_path / "finetuned", tmp_path / "work"
    args = ["--model", str(models[0]), "--index", *[str(world / "index" / f"{c}.jsonl") for c in CLASSES]]
    args += ["--captions", *[str(world / "captions" / f"{c}.jsonl") for c in CLASSES], "--latents", *map(str, latents)]
    args += ["--root", str(world / "data"), "--out", str(out), "--work", str(work), "--resolution", str(RESOLUTION)]
    args += ["--train-batch-size", "4" if ON_GPU else "1", "--gradient-accumulation-steps", "1"]
    # on a GPU a checkpoint at step 2 of 3; on the CPU 1 step and none (the fullsize tier's workflow writes one)
    steps = 3 if ON_GPU else 1
    args += ["--max-train-steps", str(steps), "--checkpointing-steps", "2", "--checkpoints-total-limit", "1"]
    args += ["--mixed-precision", "fp16" if ON_GPU else "no", "--use-ema", "--gradient-checkpointing"]
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "vlcp", "finetune", *args], capture_output=True, text=True, env=stage_env()
    )
    seconds = round(time.perf_counter() - start, 1)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not work.exists() and (out / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    gpu_peak = next((ln for ln in result.stderr.splitlines() if ln.startswith("peak GPU memory")), "")
    record(
        "finetune",
        steps=steps,
        train_batch_size=4 if ON_GPU else 1,
        seconds=seconds,
        peak=gpu_peak or f"host {host_peak_gib()} GiB (largest process so far)",
    )

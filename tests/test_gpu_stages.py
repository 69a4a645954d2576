"""Stages 2-4 on the tiny models: captions, fine-tuning and latents, including kill and resume."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vlcp import contract, demo_data, tiny_models
from vlcp.index import index_class
from vlcp.models import ModelNotFoundError, load_captioner, load_stable_diffusion

HERE = Path(__file__).parent
CLASSES = ("three", "seven")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Two demo classes indexed, and both tiny models saved."""
    root = tmp_path_factory.mktemp("stages")
    data = root / "data"
    demo_data.write_demo(data, train_per_class=20, val_per_class=2, image_size=32, seed=0)
    for cls in CLASSES:
        records, _ = index_class(data, "train", cls, demo_data.LABELS[cls], [".png"], 10**6)
        contract.write_index(root / "index" / f"{cls}.jsonl", records)
    tiny_models.save_tiny_stable_diffusion(root / "sd", seed=0, resolution=32)
    tiny_models.save_tiny_llava(root / "llava", seed=0)
    return root


def wrapped(module, function, args, count_file, kill_after=0):
    cmd = [sys.executable, str(HERE / "killed_run.py"), module, function, str(kill_after), str(count_file), "--", *map(str, args)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(HERE.parent))
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def calls(count_file):
    return len(Path(count_file).read_text().splitlines()) if Path(count_file).exists() else 0


def caption_args(world, out, progress, batch_size=4):
    return [
        "--index", world / "index" / "three.jsonl", "--root", world / "data", "--model", world / "llava",
        "--prompt", "Describe the physical appearance of the {label} in the image.",
        "--batch-size", batch_size, "--max-new-tokens", 12, "--progress", progress, "--out", out,
    ]


def test_caption_kill_and_resume_matches_an_uninterrupted_run(world, tmp_path):
    straight = tmp_path / "straight.jsonl"
    result = wrapped("vlcp.caption", "caption_batch", caption_args(world, straight, tmp_path / "p0"), tmp_path / "c0")
    assert result.returncode == 0, result.stderr
    rows = contract.read_captions(straight, [r["image"] for r in contract.read_index(world / "index" / "three.jsonl")])
    assert len(rows) == 20 and all(r["caption"].strip() for r in rows)
    assert calls(tmp_path / "c0") == 5

    out, progress = tmp_path / "resumed.jsonl", tmp_path / "work" / "three.partial.jsonl"
    killed = wrapped("vlcp.caption", "Progress.append", caption_args(world, out, progress), tmp_path / "c1", kill_after=3)
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists(), "a killed job must not leave its declared output"
    assert progress.exists()

    resumed = wrapped("vlcp.caption", "caption_batch", caption_args(world, out, progress), tmp_path / "c2")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 12 of 20 images already captioned" in resumed.stderr
    assert calls(tmp_path / "c2") == 2, "only the two unfinished batches may be captioned again"
    assert out.read_bytes() == straight.read_bytes()
    assert not progress.exists()


def test_caption_progress_of_other_settings_is_not_reused(world, tmp_path):
    out, progress = tmp_path / "a.jsonl", tmp_path / "p.jsonl"
    wrapped("vlcp.caption", "Progress.append", caption_args(world, out, progress), tmp_path / "c1", kill_after=2)
    result = wrapped("vlcp.caption", "caption_batch", caption_args(world, out, progress, batch_size=5), tmp_path / "c2")
    assert result.returncode == 0 and "resuming" not in result.stderr
    assert calls(tmp_path / "c2") == 4


def test_caption_prompt_and_images_are_llava_model_vqa(world):
    from PIL import Image

    from vlcp.caption import build_prompt, mean_colour, pad_to_square

    _, processor = load_captioner(str(world / "llava"))
    # llava/conversation.py, conv_llava_v1 (SeparatorStyle.TWO, sep " "), as model_vqa.py builds it for LLaVA-1.5
    assert build_prompt(processor, "Describe the {label}.", "tench") == (
        "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the human's questions. USER: <image>\nDescribe the tench. ASSISTANT:"
    )
    assert build_prompt(processor, "Describe the {label}.", "tench", "chat_template") == "USER: <image>\nDescribe the tench. ASSISTANT:"
    # expand2square with the CLIP processor's mean (0.48145466, 0.4578275, 0.40821073) x 255, truncated
    assert mean_colour(processor) == (122, 116, 104)
    wide = Image.new("RGB", (40, 20), (255, 0, 0))
    square = pad_to_square(wide, (122, 116, 104))
    assert square.size == (40, 40)
    assert square.getpixel((0, 0)) == (122, 116, 104) and square.getpixel((20, 20)) == (255, 0, 0)
    assert square.getpixel((20, 9)) == (122, 116, 104) and square.getpixel((20, 10)) == (255, 0, 0)
    assert pad_to_square(square, (0, 0, 0)) is square


def encode(world, out, *options):
    args = ["--index", world / "index" / "three.jsonl", "--root", world / "data", "--model", world / "sd",
            "--resolution", 32, "--batch-size", 8, "--out", out, *options]
    result = wrapped("vlcp.encode", "encode_images", args, out.with_suffix(".count"))
    assert result.returncode == 0, result.stderr
    return calls(out.with_suffix(".count"))


def test_encode_shape_and_identical_bytes(world, tmp_path):
    crops = ("--resize", "crop", "--train-resolution", 32, "--flip")
    encode(world, tmp_path / "a.safetensors", *crops)
    encode(world, tmp_path / "b.safetensors", *crops)
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    tensors, images = contract.read_latents(tmp_path / "a.safetensors")
    # centre crops at the fine-tune resolution are the clustering latents too: stored once
    assert set(tensors) == {"latents", "latents_flipped"}
    assert tensors["latents"].shape == (20, 4, 4, 4) and tensors["latents_flipped"].shape == (20, 4, 4, 4)
    assert images == [r["image"] for r in contract.read_index(world / "index" / "three.jsonl")]
    assert not torch.equal(tensors["latents"], tensors["latents_flipped"])


def test_clustering_latents_squash_the_whole_image(world, tmp_path):
    import numpy as np
    from PIL import Image

    from vlcp.encode import encode_images
    from vlcp.index import index_class
    from vlcp.models import load_vae

    rng = np.random.default_rng(0)
    (tmp_path / "data" / "train" / "wide").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (24, 48, 3), dtype=np.uint8)).save(tmp_path / "data" / "train" / "wide" / f"{i}.png")
    records, _ = index_class(tmp_path / "data", "train", "wide", "wide", [".png"], 10**6)
    contract.write_index(tmp_path / "wide.jsonl", records)
    out = tmp_path / "s.safetensors"
    args = ["--index", tmp_path / "wide.jsonl", "--root", tmp_path / "data", "--model", world / "sd", "--resolution", 32,
            "--train-resolution", 16, "--flip", "--out", out]
    assert wrapped("vlcp.encode", "encode_images", args, tmp_path / "count").returncode == 0
    tensors, images = contract.read_latents(out)
    # the authors' gen_prototype.py: transforms.Resize((size, size)) of the whole image, no crop; the
    # fine-tuning latents are centre crops (diffusers' recipe), stored beside them with their mirror images
    assert set(tensors) == {"latents", "train_latents", "train_latents_flipped"}
    assert tensors["latents"].shape == (3, 4, 4, 4) and tensors["train_latents"].shape == (3, 4, 2, 2)
    vae = load_vae(str(world / "sd"))
    first = Image.open(tmp_path / "data" / images[0]).convert("RGB")
    squashed = encode_images(vae, [first.resize((32, 32), Image.Resampling.BILINEAR)], 1)
    torch.testing.assert_close(tensors["latents"][:1], squashed, rtol=0, atol=1e-5)
    # Resize(16): 48x24 -> 32x16, then CenterCrop(16)
    crop = first.resize((32, 16), Image.Resampling.BILINEAR).crop((8, 0, 24, 16))
    torch.testing.assert_close(tensors["train_latents"][:1], encode_images(vae, [crop], 1), rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def training_inputs(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("ft-inputs")
    captions, latents = [], []
    for cls in CLASSES:
        rows = contract.read_index(world / "index" / f"{cls}.jsonl")
        contract.write_captions(root / f"{cls}.jsonl", [{"image": r["image"], "caption": f"a {cls} digit {i}"} for i, r in enumerate(rows)])
        args = ["--index", world / "index" / f"{cls}.jsonl", "--root", world / "data", "--model", world / "sd",
                "--resolution", 32, "--resize", "crop", "--train-resolution", 32, "--flip", "--out", root / f"{cls}.safetensors"]
        assert wrapped("vlcp.encode", "encode_images", args, root / "count").returncode == 0
        captions.append(root / f"{cls}.jsonl")
        latents.append(root / f"{cls}.safetensors")
    return captions, latents


def finetune_args(world, captions, latents, out, work, steps=6):
    index = [world / "index" / f"{cls}.jsonl" for cls in CLASSES]
    return ["--model", world / "sd", "--index", *index, "--captions", *captions, "--latents", *latents, "--root", world / "data",
            "--out", out, "--work", work, "--resolution", 32, "--train-batch-size", 4,
            "--gradient-accumulation-steps", 2, "--learning-rate", 1e-4, "--mixed-precision", "no",
            "--no-gradient-checkpointing", "--max-train-steps", steps, "--checkpointing-steps", 2,
            "--checkpoints-total-limit", 2]


def test_finetune_kill_resume_continues_the_step_counter(world, training_inputs, tmp_path):
    captions, latents = training_inputs
    out, work = tmp_path / "pipeline", tmp_path / "work"
    killed = wrapped("vlcp.finetune", "save_checkpoint", finetune_args(world, captions, latents, out, work), tmp_path / "c1", kill_after=1)
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists()
    assert sorted(p.name for p in work.glob("checkpoint-*")) == ["checkpoint-2"]

    resumed = wrapped("vlcp.finetune", "save_checkpoint", finetune_args(world, captions, latents, out, work), tmp_path / "c2")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from checkpoint-2 (step 2 of 6)" in resumed.stderr
    assert "effective batch 8 = train_batch_size 4 x gradient_accumulation_steps 2 x 1 process(es)" in resumed.stderr
    assert calls(tmp_path / "c2") == 2, "a resumed run saves only the checkpoints after step 2 (4 and 6)"
    assert not work.exists(), "a finished job's checkpoints are removed"

    straight = wrapped("vlcp.finetune", "save_checkpoint",
                       finetune_args(world, captions, latents, tmp_path / "straight", tmp_path / "straight-work"), tmp_path / "c3")
    assert straight.returncode == 0, straight.stderr
    weights = "unet/diffusion_pytorch_model.safetensors"
    assert (out / weights).read_bytes() == (tmp_path / "straight" / weights).read_bytes(), "resumed equals uninterrupted"


def test_finetune_does_not_resume_checkpoints_of_another_model(world, training_inputs, tmp_path):
    """A model remade at the same path after a kill: the kept checkpoint of the old one is not resumed."""
    captions, latents = training_inputs
    out, work, model = tmp_path / "pipeline", tmp_path / "work", tmp_path / "sd"
    shutil.copytree(world / "sd", model)
    args = finetune_args(world, captions, latents, out, work)
    args[args.index("--model") + 1] = model
    killed = wrapped("vlcp.finetune", "save_checkpoint", args, tmp_path / "c1", kill_after=1)
    assert killed.returncode == -signal.SIGKILL and (work / "checkpoint-2").is_dir()
    tiny_models.build_tiny_stable_diffusion(seed=1, resolution=32).unet.save_pretrained(model / "unet", safe_serialization=True)
    rerun = wrapped("vlcp.finetune", "save_checkpoint", args, tmp_path / "c2")
    assert rerun.returncode == 0, rerun.stderr
    assert f"not resuming: the checkpoints in {work} were made with other settings" in rerun.stderr
    assert "resuming from" not in rerun.stderr
    assert calls(tmp_path / "c2") == 3, "all three checkpoints (2, 4, 6) made again"

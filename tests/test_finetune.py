"""Stage 3, fine-tune, on the tiny Stable Diffusion: kill and resume, and never another run's checkpoints."""

import shutil
import signal

import pytest

from conftest import STAGE_CLASSES, calls, wrapped
from vlcp import contract, tiny_models


@pytest.fixture(scope="module")
def training_inputs(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("ft-inputs")
    captions, latents = [], []
    for cls in STAGE_CLASSES:
        rows = contract.read_index(world / "index" / f"{cls}.jsonl")
        contract.write_captions(
            root / f"{cls}.jsonl", [{"image": r["image"], "caption": f"a {cls} digit {i}"} for i, r in enumerate(rows)]
        )
        args = [
            "--index",
            world / "index" / f"{cls}.jsonl",
            "--root",
            world / "data",
            "--model",
            world / "sd",
            "--resolution",
            32,
            "--resize",
            "crop",
            "--train-resolution",
            32,
            "--flip",
            "--out",
            root / f"{cls}.safetensors",
        ]
        assert wrapped("vlcp.encode", "encode_images", args, root / "count").returncode == 0
        captions.append(root / f"{cls}.jsonl")
        latents.append(root / f"{cls}.safetensors")
    return captions, latents


def finetune_args(world, captions, latents, out, work, steps=6):
    index = [world / "index" / f"{cls}.jsonl" for cls in STAGE_CLASSES]
    return [
        "--model",
        world / "sd",
        "--index",
        *index,
        "--captions",
        *captions,
        "--latents",
        *latents,
        "--root",
        world / "data",
        "--out",
        out,
        "--work",
        work,
        "--resolution",
        32,
        "--train-batch-size",
        4,
        "--gradient-accumulation-steps",
        2,
        "--learning-rate",
        1e-4,
        "--mixed-precision",
        "no",
        "--no-gradient-checkpointing",
        "--max-train-steps",
        steps,
        "--checkpointing-steps",
        2,
        "--checkpoints-total-limit",
        2,
    ]


@pytest.mark.slow
def test_finetune_kill_resume_continues_the_step_counter(world, training_inputs, tmp_path):
    captions, latents = training_inputs
    out, work = tmp_path / "pipeline", tmp_path / "work"
    killed = wrapped(
        "vlcp.finetune",
        "save_checkpoint",
        finetune_args(world, captions, latents, out, work),
        tmp_path / "c1",
        kill_after=1,
    )
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists()
    assert sorted(p.name for p in work.glob("checkpoint-*")) == ["checkpoint-2"]

    resumed = wrapped(
        "vlcp.finetune", "save_checkpoint", finetune_args(world, captions, latents, out, work), tmp_path / "c2"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from checkpoint-2 (step 2 of 6)" in resumed.stderr
    assert "effective batch 8 = train_batch_size 4 x gradient_accumulation_steps 2 x 1 process(es)" in resumed.stderr
    assert calls(tmp_path / "c2") == 2, "a resumed run saves only the checkpoints after step 2 (4 and 6)"
    assert not work.exists(), "a finished job's checkpoints are removed"

    straight = wrapped(
        "vlcp.finetune",
        "save_checkpoint",
        finetune_args(world, captions, latents, tmp_path / "straight", tmp_path / "straight-work"),
        tmp_path / "c3",
    )
    assert straight.returncode == 0, straight.stderr
    weights = "unet/diffusion_pytorch_model.safetensors"
    assert (out / weights).read_bytes() == (tmp_path / "straight" / weights).read_bytes(), (
        "resumed equals uninterrupted"
    )


def test_finetune_does_not_resume_checkpoints_of_another_model(world, training_inputs, tmp_path):
    """A model remade at the same path after a kill: the kept checkpoint of the old one is not resumed."""
    captions, latents = training_inputs
    out, work, model = tmp_path / "pipeline", tmp_path / "work", tmp_path / "sd"
    shutil.copytree(world / "sd", model)
    args = finetune_args(world, captions, latents, out, work)
    args[args.index("--model") + 1] = model
    killed = wrapped("vlcp.finetune", "save_checkpoint", args, tmp_path / "c1", kill_after=1)
    assert killed.returncode == -signal.SIGKILL and (work / "checkpoint-2").is_dir()
    tiny_models.build_tiny_stable_diffusion(seed=1, resolution=32).unet.save_pretrained(
        model / "unet", safe_serialization=True
    )
    rerun = wrapped("vlcp.finetune", "save_checkpoint", args, tmp_path / "c2")
    assert rerun.returncode == 0, rerun.stderr
    assert f"not resuming: the checkpoints in {work} were made with other settings" in rerun.stderr
    assert "resuming from" not in rerun.stderr
    assert calls(tmp_path / "c2") == 3, "all three checkpoints (2, 4, 6) made again"

"""Stage 3, fine-tune, on the tiny Stable Diffusion: kill and resume, never another run's checkpoints, the
training batches read lazily from the latents files, checkpoints across processes, the effective batch."""

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest
import torch

from conftest import STAGE_CLASSES, calls, wrapped, write_class_latents
from vlcp import contract, finetune, tiny_models


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
    assert calls(tmp_path / "c2") == 1, "a resumed run saves only checkpoint 4: none at the last step (6)"
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
    assert calls(tmp_path / "c2") == 2, "both checkpoints (2, 4) made again; none at the last step"


def test_training_batches_equal_those_of_the_concatenated_latents(tmp_path):
    """The lazy reader gives, batch for batch, the bytes that concatenating every class's latents gave."""
    paths = [tmp_path / f"{k}.safetensors" for k in range(3)]
    whole = [write_class_latents(path, n, seed=k)[0] for k, (path, n) in enumerate(zip(paths, (5, 9, 4)))]
    latents = torch.cat([t["latents"] for t in whole])
    flipped = torch.cat([t["latents_flipped"] for t in whole])
    ids = torch.arange(18 * 77, dtype=torch.int32).reshape(18, 77)
    dataset = finetune.TrainingSet(ids, [contract.LatentsFile(p) for p in paths])
    for epoch in range(3):
        for batch in finetune.epoch_batches(18, 4, seed=0, epoch=epoch, random_flip=True):
            loader = torch.utils.data.DataLoader(dataset, batch_sampler=[batch])
            got, got_ids = next(iter(loader))
            want = torch.stack([(flipped if flip else latents)[i] for i, flip in batch])
            assert torch.equal(got, want)
            assert got_ids.dtype == torch.int64 and torch.equal(got_ids, ids[[i for i, _ in batch]].long())


def test_flip_without_flipped_latents_names_the_file(tmp_path):
    index, captions, latents = tmp_path / "i.jsonl", tmp_path / "c.jsonl", tmp_path / "l.safetensors"
    _, images = write_class_latents(latents, 3, seed=0, flipped=False)
    contract.write_index(
        index, [{"image": im, "class": "c0", "label": "c", "width": 8, "height": 8, "mode": "RGB"} for im in images]
    )
    contract.write_captions(captions, [{"image": im, "caption": "a c"} for im in images])
    tokenizer = tiny_models.build_tiny_stable_diffusion(seed=0, resolution=32).tokenizer
    with pytest.raises(contract.ContractError, match=r"l\.safetensors has no flipped latents"):
        finetune.load_training_data([index], [captions], [latents], tmp_path, tokenizer, random_flip=True)
    ids, truncated, files, image_paths = finetune.load_training_data(
        [index], [captions], [latents], tmp_path, tokenizer, False
    )
    assert ids.shape == (3, tokenizer.model_max_length) and ids.dtype == torch.int32 and truncated == 0
    assert image_paths is None and files[0].images == images


class RecordingAccelerator:
    """Stands in for accelerate across processes: notes, at each barrier, which folders exist."""

    def __init__(self, work):
        self.work, self.is_main_process, self.barriers = work, True, []

    def save_state(self, folder):
        Path(folder).mkdir(parents=True)
        (Path(folder) / "random_states_0.pkl").write_bytes(b"rank 0")

    def wait_for_everyone(self):
        self.barriers.append(sorted(p.name for p in self.work.iterdir()))


def test_checkpoint_folder_is_renamed_only_after_every_process_wrote(tmp_path):
    accelerator = RecordingAccelerator(tmp_path)
    finetune.save_checkpoint(accelerator, tmp_path, 10, keep=2)
    assert accelerator.barriers[1] == [".tmp-checkpoint-10"], "the barrier after writing comes before the rename"
    assert accelerator.barriers[-1] == ["checkpoint-10"]
    assert json.loads((tmp_path / "checkpoint-10" / "vlcp-step.json").read_text()) == {"step": 10}


def test_effective_batch_counts_every_process():
    assert finetune.effective_batch(32, 4, 1) == 128
    assert finetune.effective_batch(32, 4, 8) == 1024


@pytest.mark.parametrize(
    "keep, before, after",
    [
        (2, ["checkpoint-4"], ["checkpoint-4", "checkpoint-6"]),
        (1, ["checkpoint-4"], ["checkpoint-6"]),
        (3, ["checkpoint-2", "checkpoint-4"], ["checkpoint-2", "checkpoint-4", "checkpoint-6"]),
    ],
)
def test_old_checkpoints_go_before_the_new_one_is_written(tmp_path, keep, before, after):
    """A full-size checkpoint is about 14 GB: the disk holds at most max(keep, 2) at once, and the newest
    stays until the new one is complete."""
    for step in (2, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "vlcp-step.json").write_text(json.dumps({"step": step}))
    accelerator = RecordingAccelerator(tmp_path)
    finetune.save_checkpoint(accelerator, tmp_path, 6, keep=keep)
    assert accelerator.barriers[0] == before, "what is on disk while the new checkpoint is written"
    assert accelerator.barriers[1] == sorted([*before, ".tmp-checkpoint-6"])
    assert accelerator.barriers[-1] == after


def test_multi_gpu_jobs_launch_on_a_free_port():
    """Two multi-GPU fine-tunes on one node must not both take accelerate's default port 29500: the launch
    line asks for a port that is free when the job starts."""
    import socket
    import subprocess

    assert finetune.launcher(1) == "python -m"
    line = finetune.launcher(4)
    assert line.startswith("accelerate launch --multi_gpu --num_processes 4 --num_machines 1 --main_process_port ")
    assert line.endswith(" -m")
    port_expr = line.split("--main_process_port ")[1][: -len(" -m")]
    env = dict(
        os.environ,
        PYTHONPATH=str(Path(finetune.__file__).parents[1]),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    ports = [
        int(
            subprocess.run(
                ["bash", "-c", f"echo {port_expr}"], capture_output=True, text=True, env=env, check=True
            ).stdout
        )
        for _ in range(2)
    ]
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # free: nothing listens there

"""Stage 3, fine-tune: train the U-Net of Stable Diffusion on the captioned train images.

The text-to-image recipe of diffusers, with accelerate for devices, mixed
precision, gradient accumulation and checkpoints: VAE and text encoder stay
frozen, the loss is the MSE of the noise (or v) prediction. By default it
trains from the cached stage-4 latents instead of re-encoding every image at
every step. A killed run resumes from its newest checkpoint in the work folder;
the output is a full pipeline folder that ``StableDiffusionPipeline.from_pretrained``
opens.
"""

import argparse
import bisect
import gc
import itertools
import json
import math
import os
import shutil
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from vlcp import contract, provenance
from vlcp.atomic import atomic_dir
from vlcp.cli import run
from vlcp.errors import VlcpError
from vlcp.images import load_rgb, random_crop, resize_center_crop, to_tensor
from vlcp.launch import free_port, launcher  # noqa: F401 (vlcp.finetune.launcher, free_port: kept importable here)
from vlcp.models import load_stable_diffusion, safety_checker_gaps
from vlcp.seeds import derive
from vlcp.settings import add_settings, section

CHECKPOINT_PREFIX = "checkpoint-"


class TrainingSet(torch.utils.data.Dataset):
    """Captioned train images as (pixels or latent, token ids), indexed by (index, flip).

    Latents are read from the per-class files one row per item, so memory does not grow with the
    train set; the token ids of every caption are held (int32, 77 per image).
    """

    def __init__(self, input_ids, latent_files=None, image_paths=None, resolution=None, center_crop=True):
        self.input_ids = input_ids
        self.latent_files = latent_files
        self.ends = list(itertools.accumulate(len(f) for f in latent_files)) if latent_files else []
        self.image_paths, self.resolution, self.center_crop = image_paths, resolution, center_crop

    def __len__(self):
        return len(self.input_ids)

    def latent(self, index, flip):
        part = bisect.bisect_right(self.ends, index)
        local = index - (self.ends[part - 1] if part else 0)
        latents = self.latent_files[part]
        return latents.row(contract.training_latents_name(latents.tensors, flip), local)

    def __getitem__(self, item):
        index, flip = item
        ids = self.input_ids[index].long()
        if self.latent_files is not None:
            return self.latent(index, flip), ids
        img = load_rgb(self.image_paths[index])
        if self.center_crop:
            img = resize_center_crop(img, self.resolution)
        else:
            img = random_crop(img, self.resolution, torch.Generator().manual_seed(derive("crop", index, int(flip))))
        if flip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_tensor([img])[0], ids


def epoch_batches(n, batch_size, seed, epoch, random_flip, rank=0, world=1, grad_accum=1):
    """This process's micro-batches of one epoch: lists of (index, flip), the same on every rerun.

    The order depends only on (seed, epoch), so a resumed run sees the batches it would have seen.
    Trailing batches that would not complete an optimiser update on every process are dropped.
    """
    generator = torch.Generator().manual_seed(derive("epoch", seed, epoch))
    order = torch.randperm(n, generator=generator).tolist()
    flips = (torch.rand(n, generator=generator) < 0.5).tolist() if random_flip else [False] * n
    batches = [[(i, flips[i]) for i in order[s : s + batch_size]] for s in range(0, n - batch_size + 1, batch_size)]
    per_process = len(batches) // world // grad_accum * grad_accum
    return batches[rank::world][:per_process]


def checkpoints(work):
    """Checkpoint folders in ``work``, oldest first, as (step, path)."""
    found = []
    for path in Path(work).glob(f"{CHECKPOINT_PREFIX}*"):
        suffix = path.name[len(CHECKPOINT_PREFIX) :]
        if suffix.isdigit() and (path / "vlcp-step.json").is_file():
            found.append((int(suffix), path))
    return sorted(found)


EMA_FILE = "ema.safetensors"


def save_ema(ema, folder):
    """The EMA's weights as safetensors, and its step count, in a checkpoint folder: not accelerate's
    registered object, which it pickles, and which diffusers' EMAModel.load_state_dict deep-copies on
    the way back in (two more copies of the U-Net in memory while resuming, 7 GB at full size)."""
    from safetensors.torch import save_file

    save_file({str(i): p.detach().contiguous() for i, p in enumerate(ema.shadow_params)}, folder / EMA_FILE)
    (folder / "ema.json").write_text(json.dumps({"optimization_step": ema.optimization_step}))


def load_ema(ema, folder):
    """Put a checkpoint's EMA weights into ``ema``'s own tensors, one at a time, and its step count."""
    from safetensors import safe_open

    with safe_open(str(folder / EMA_FILE), framework="pt") as saved:
        if len(saved.keys()) != len(ema.shadow_params):
            raise VlcpError(
                f"{folder / EMA_FILE} holds {len(saved.keys())} tensors, not the U-Net's {len(ema.shadow_params)}"
            )
        for i, param in enumerate(ema.shadow_params):
            param.copy_(saved.get_tensor(str(i)))
    ema.optimization_step = json.loads((folder / "ema.json").read_text())["optimization_step"]


def save_checkpoint(accelerator, work, step, keep, ema=None):
    """Save a resumable checkpoint atomically, keeping the newest ``keep`` in all.

    Not accelerate's ``automatic_checkpoint_naming``: it names a folder by how many saves came before
    (not by optimiser step, which a resumed run must know). The oldest checkpoints go before the new one
    is written, so the disk holds at most ``max(keep, 2)`` of them at once (a full-size one is about 14 GB);
    the newest stays until the new one is complete (renamed once every process has written its part), so
    a job killed while saving can always resume."""
    if accelerator.is_main_process:
        work.mkdir(parents=True, exist_ok=True)
        for _, old in checkpoints(work)[: -max(keep - 1, 1)]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    tmp = work / f".tmp-{CHECKPOINT_PREFIX}{step}"
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()  # every process has written its RNG state before the folder is renamed
    if accelerator.is_main_process:
        if ema is not None:
            save_ema(ema, tmp)
        (tmp / "vlcp-step.json").write_text(json.dumps({"step": step}))
        final = work / f"{CHECKPOINT_PREFIX}{step}"
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
        for _, old in checkpoints(work)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


# Settings that change neither the trained weights nor the resume points' meaning.
NOT_RESULT_SETTINGS = ("out", "work", *section("finetune", execution=True))


def keep_work_of_this_run(accelerator, args, log):
    """Discard the checkpoints in ``args.work`` unless they were made by this same run (settings, base
    model's files, input files); then mark the work folder as this run's. A job rerun after a changed
    model or input at the same path must start over, not resume another run's weights."""
    settings = {k: v for k, v in vars(args).items() if k not in NOT_RESULT_SETTINGS}
    identity = provenance.work_identity(settings, [args.model], [*args.index, *args.captions, *(args.latents or [])])
    if accelerator.is_main_process:
        found = checkpoints(args.work) if args.work.exists() else []
        if not provenance.claim_work(args.work, identity) and found:
            log(
                f"not resuming: the checkpoints in {args.work} were made with other settings, model or inputs; "
                "starting over"
            )
    accelerator.wait_for_everyone()


def tokenize(tokenizer, captions):
    """Token ids padded and truncated to the text encoder's length; also the count of truncated captions."""
    full = tokenizer(captions, truncation=False).input_ids
    truncated = sum(len(ids) > tokenizer.model_max_length for ids in full)
    ids = tokenizer(
        captions, max_length=tokenizer.model_max_length, padding="max_length", truncation=True, return_tensors="pt"
    ).input_ids
    return ids, truncated


def load_training_data(index_paths, captions_paths, latents_paths, root, tokenizer, random_flip):
    """The train set of all classes in index order: token ids (int32), the count of truncated captions,
    and the per-class latents files (read lazily) or the image paths.

    Captions are tokenized class by class, so no list of every caption or every latent is ever held.
    """
    ids, truncated, files, images = [], 0, [], []
    for i, cap_path in enumerate(captions_paths):
        rows = contract.read_captions(cap_path, [r["image"] for r in contract.read_index(index_paths[i])])
        class_ids, class_truncated = tokenize(tokenizer, [r["caption"] for r in rows])
        ids.append(class_ids.to(torch.int32))
        truncated += class_truncated
        if latents_paths:
            latents = contract.LatentsFile(latents_paths[i])
            if latents.images != [r["image"] for r in rows]:
                raise contract.ContractError(
                    f"{latents_paths[i]} and {cap_path} list different images; rerun both stages"
                )
            if random_flip and contract.training_latents_name(latents.tensors, flip=True) not in latents.tensors:
                raise contract.ContractError(
                    f"{latents_paths[i]} has no flipped latents, which random flip from latents needs; "
                    "delete it and rerun the encode rule with finetune.random_flip on"
                )
            files.append(latents)
        else:
            images += [Path(root) / r["image"] for r in rows]
    return torch.cat(ids), truncated, (files if latents_paths else None), (None if latents_paths else images)


def effective_batch(train_batch_size, gradient_accumulation_steps, processes):
    """Images per optimiser update: per-process batch x accumulation steps x processes."""
    return train_batch_size * gradient_accumulation_steps * processes


def release_training_state(accelerator, optimizer, ema):
    """Empty the optimiser's state and the EMA's copy, and drop accelerate's references to them: the objects
    stay, their memory goes."""
    optimizer.state.clear()
    if ema is not None:
        ema.shadow_params = []
    accelerator.free_memory()


def train(args):
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    mixed_precision = args.mixed_precision if torch.cuda.is_available() else "no"
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps, mixed_precision=mixed_precision
    )
    set_seed(args.seed)
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if accelerator.is_main_process else (lambda *a: None)

    pipe = load_stable_diffusion(args.model, variant=args.variant)
    tokenizer, text_encoder, vae, unet = pipe.tokenizer, pipe.text_encoder, pipe.vae, pipe.unet
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed_precision, torch.float32)
    vae.requires_grad_(False).to(accelerator.device, dtype=weight_dtype)
    text_encoder.requires_grad_(False).to(accelerator.device, dtype=weight_dtype)
    unet.train()
    if args.gradient_checkpointing:
        unet.enable_gradient_checkpointing()

    input_ids, truncated, latent_files, image_paths = load_training_data(
        args.index, args.captions, args.latents, args.root, tokenizer, args.random_flip
    )
    log(
        f"{len(input_ids)} captioned images; {truncated} caption(s) "
        f"longer than {tokenizer.model_max_length} tokens truncated"
    )
    dataset = TrainingSet(input_ids, latent_files, image_paths, args.resolution, args.center_crop)

    world, rank = accelerator.num_processes, accelerator.process_index
    micro_per_epoch = len(
        epoch_batches(
            len(dataset), args.train_batch_size, args.seed, 0, False, rank, world, args.gradient_accumulation_steps
        )
    )
    updates_per_epoch = micro_per_epoch // args.gradient_accumulation_steps
    if updates_per_epoch == 0:
        raise VlcpError(
            f"{len(dataset)} images cannot fill one update of train_batch_size {args.train_batch_size} x "
            f"gradient_accumulation_steps {args.gradient_accumulation_steps} "
            f"x {world} process(es); lower finetune.train_batch_size"
        )
    max_steps = args.max_train_steps or args.num_train_epochs * updates_per_epoch
    epochs = math.ceil(max_steps / updates_per_epoch)
    batch = effective_batch(args.train_batch_size, args.gradient_accumulation_steps, world)
    learning_rate = args.learning_rate * batch if args.scale_lr else args.learning_rate
    log(
        f"effective batch {batch} = train_batch_size {args.train_batch_size} x gradient_accumulation_steps "
        f"{args.gradient_accumulation_steps} x {world} process(es); "
        f"{updates_per_epoch} updates per epoch, {max_steps} in all; "
        f"learning rate {learning_rate:g}" + (f" (scale_lr: {args.learning_rate:g} x {batch})" if args.scale_lr else "")
    )

    optimizer = torch.optim.AdamW(
        unet.parameters(),
        lr=learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        weight_decay=args.adam_weight_decay,
        eps=args.adam_epsilon,
    )
    lr_scheduler = get_scheduler(
        args.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=args.lr_warmup_steps * world,
        num_training_steps=max_steps * world,
    )
    unet, optimizer, lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)
    ema = None
    if args.use_ema:
        ema = EMAModel(accelerator.unwrap_model(unet).parameters())
        ema.to(accelerator.device)

    step = 0
    keep_work_of_this_run(accelerator, args, log)
    found = checkpoints(args.work)
    if ema is not None and found and not (found[-1][1] / EMA_FILE).is_file():
        log(f"not resuming: {found[-1][1]} has no {EMA_FILE} (an older vlcp's checkpoint); starting over")
        found = []
    if found:
        step, path = found[-1]
        accelerator.load_state(str(path))
        if ema is not None:
            load_ema(ema, path)
        log(f"resuming from {path.name} (step {step} of {max_steps})")
    first_epoch, skip = step // updates_per_epoch, (step % updates_per_epoch) * args.gradient_accumulation_steps

    bar = tqdm(
        total=max_steps,
        initial=step,
        desc="fine-tune",
        unit="step",
        disable=not accelerator.is_main_process,
        file=sys.stderr,
    )
    for epoch in range(first_epoch, epochs):
        batches = epoch_batches(
            len(dataset),
            args.train_batch_size,
            args.seed,
            epoch,
            args.random_flip,
            rank,
            world,
            args.gradient_accumulation_steps,
        )
        # The loader's own generator: creating an iterator must not draw from the global RNG,
        # or a resumed run's noise would drift from an uninterrupted run's.
        loader = torch.utils.data.DataLoader(
            # A resumed epoch starts past its finished batches by slicing the batch list: the skipped ones
            # are never loaded (what accelerate's skip_first_batches gives, without rebuilding the loader).
            dataset,
            batch_sampler=batches[skip if epoch == first_epoch else 0 :],
            num_workers=0 if args.latents else args.dataloader_num_workers,
            generator=torch.Generator().manual_seed(derive("loader", args.seed, epoch)),
        )
        for model_input, ids in loader:
            with accelerator.accumulate(unet):
                model_input = model_input.to(accelerator.device, dtype=weight_dtype)
                if image_paths is not None:
                    model_input = vae.encode(model_input).latent_dist.sample() * vae.config.scaling_factor
                noise = torch.randn_like(model_input)
                timesteps = torch.randint(
                    0, noise_scheduler.config.num_train_timesteps, (len(model_input),), device=model_input.device
                )
                noisy = noise_scheduler.add_noise(model_input, noise, timesteps)
                hidden = text_encoder(ids.to(accelerator.device), return_dict=False)[0]
                if noise_scheduler.config.prediction_type == "v_prediction":
                    target = noise_scheduler.get_velocity(model_input, noise, timesteps)
                else:
                    target = noise
                prediction = unet(noisy, timesteps, hidden, return_dict=False)[0]
                loss = F.mse_loss(prediction.float(), target.float())
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(unet.parameters(), args.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            if ema is not None:
                ema.step(unet.parameters())
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr_scheduler.get_last_lr()[0]:.2e}", epoch=epoch)
            # no checkpoint at the last step: the final pipeline, written next, is the last thing saved
            if step % args.checkpointing_steps == 0 and step < max_steps:
                save_checkpoint(accelerator, args.work, step, args.checkpoints_total_limit, ema)
            if step >= max_steps:
                break
        if step >= max_steps:
            break
    bar.close()
    if accelerator.device.type == "cuda":
        log(f"peak GPU memory {torch.cuda.max_memory_allocated(accelerator.device) / 2**30:.1f} GiB (this process)")

    accelerator.wait_for_everyone()
    trained = accelerator.unwrap_model(unet)
    if ema is not None:
        ema.copy_to(trained.parameters())
    # What the save does not need goes first: AdamW's moments and the EMA copy (12 bytes a parameter, 10 GB
    # at full size) and the frozen models, which the save reads again in float32.
    release_training_state(accelerator, optimizer, ema)
    del pipe, vae, text_encoder, unet, optimizer, lr_scheduler, ema
    gc.collect()
    if accelerator.is_main_process:
        with atomic_dir(args.out) as tmp:
            # with the base model's safety checker and feature extractor where it has them, as diffusers'
            # train_text_to_image.py saves its pipeline (synthesize.safety_checker runs that checker)
            load_stable_diffusion(
                args.model, variant=args.variant, unet=trained, safety_checker=not safety_checker_gaps(args.model)
            ).save_pretrained(tmp, safe_serialization=True)
            provenance.record(tmp, "finetune", {**vars(args), "steps": step}, models=[args.model])
        shutil.rmtree(args.work)  # the checkpoints of a finished job
        log(f"fine-tuned pipeline written to {args.out} after {step} steps")
    accelerator.end_training()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="base Stable Diffusion hub id or folder")
    parser.add_argument("--variant", help="weights variant of the model files, e.g. fp16 (default: detected)")
    parser.add_argument("--index", nargs="+", required=True, type=Path, help="train index of every class")
    parser.add_argument("--captions", nargs="+", required=True, type=Path, help="captions of every class, same order")
    parser.add_argument(
        "--latents",
        nargs="*",
        default=[],
        type=Path,
        help="stage-4 latents of every class, same order; none means encode images",
    )
    parser.add_argument("--root", type=Path, default=Path("."), help="dataset root (when training from images)")
    parser.add_argument("--out", required=True, type=Path, help="output pipeline folder")
    parser.add_argument("--work", required=True, type=Path, help="folder of resumable checkpoints")
    parser.add_argument("--seed", type=int, default=0)
    add_settings(parser, "finetune")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    train(args)


if __name__ == "__main__":
    run(main)

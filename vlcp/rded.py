"""RDED's soft-label evaluation: a student trained from scratch on a distilled set against a teacher's
softened predictions on every augmented batch (the protocol of the paper's ImageNet-1K and CIFAR tables).

Restated from LINs-lab/RDED ``validation/main.py``, ``validation/utils.py`` and ``argument.py`` (the
authors' ``04_evaluation/RDED`` is an unchanged copy) and their scripts (ImageNet-1K:
``imagenet-1k_10ipc_resnet-18_to_resnet-18_cr5.sh``, factor 2, 500 epochs; CIFAR:
``cifar10_10ipc_resnet-18-modified_to_resnet-18-modified_cr5.sh``, factor 1, 500 epochs):

- augmentation ShufflePatches(factor) -> RandomResizedCrop(input, scale (1/factor, 1)) -> flip ->
  normalise, then CutMix (beta 1) of the batch, which the teacher labels;
- loss KLDiv(batchmean) of log_softmax(student / T) against softmax(teacher / T), T = 20, no T^2;
- AdamW (betas 0.9, 0.999; weight decay 0.01 on the weight matrices and kernels only, ``get_parameters``),
  the learning rate times 0.5 (1 + cos(pi e / E / 2)) at epoch e, stepped once per epoch;
- the student also sees each batch in train mode without gradients (RDED computes its train accuracy
  so), which moves batch-norm running statistics: kept, it is part of the numbers. RDED's CutMix pastes
  into the batch in place (``validation/utils.py``, ``cutmix``), so that pass already sees the mixed
  batch; so here;
- test: Resize(input // 7 * 8) + CenterCrop(input), every 10 epochs past 80 % of training and after
  the last; the best is RDED's number, the last ours.

Everything runs on the device on whole batches with the run's own generators, as the Minimax
protocol does in vlcp.evaluate.
"""

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from vlcp import augment, contract, provenance
from vlcp.cli import run
from vlcp.errors import VlcpError
from vlcp.evaluate import (
    accuracy,
    accuracy_row,
    add_set_arguments,
    autocast,
    on_device,
    randomness,
    resized,
    sets_of,
    training_execution,
)
from vlcp.images import center_crop, load_rgb, resize_shorter_side
from vlcp.models import device
from vlcp.names import STUDENTS
from vlcp.settings import add_settings, stage_keys
from vlcp.split_images import decode_batch, load_images


class TeacherError(VlcpError, ValueError):
    """A teacher weights file that cannot be used; the message names it and says what to do."""


def lr_factor(epoch, epochs):
    """RDED's LambdaLR with ``--cos``: 0.5 (1 + cos(pi e / E / 2)) up to epoch E, then 0."""
    return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs / 2)) if epoch <= epochs else 0.0


def distillation_loss(student_logits, teacher_logits, temperature):
    """KLDiv(batchmean) of log_softmax(student / T) against softmax(teacher / T), with no T^2 factor."""
    return F.kl_div(
        F.log_softmax(student_logits / temperature, dim=1),
        F.softmax(teacher_logits / temperature, dim=1),
        reduction="batchmean",
    )


def shuffle_strips(images, factor, generator, dim):
    """Cut each image along ``dim`` (3: width, 2: height) into ``factor`` strips of side // factor pixels
    and put them in a random order of its own; a remainder narrower than a strip is dropped."""
    b, size = images.shape[0], images.shape[dim] // factor
    order = torch.argsort(torch.rand(b, factor, device=images.device, generator=generator), dim=1)
    index = (order[:, :, None] * size + torch.arange(size, device=images.device)).reshape(b, factor * size)
    shape = list(images.shape)
    shape[dim] = factor * size
    view = (b, 1, 1, factor * size) if dim == 3 else (b, 1, factor * size, 1)
    return images.gather(dim, index.view(view).expand(shape))


def shuffle_patches(images, factor, generator):
    """RDED's ShufflePatches on a batch (B, C, H, W): the columns of ``factor`` strips shuffled, then the
    rows. RDED's loop compares a strip's pixel offset with ``factor - 1`` to find the last strip, so for
    any image wider than ``factor`` pixels every strip is side // factor wide and the remainder is
    dropped; so here."""
    if factor <= 1:
        return images
    return shuffle_strips(shuffle_strips(images, factor, generator, dim=3), factor, generator, dim=2)


def train_batch(images_uint8, input_size, factor, generator):
    """RDED's training augmentation of a uint8 batch: ShufflePatches, RandomResizedCrop (scale 1/factor to
    1; bilinear, without RDED's antialiasing) with a random flip, ImageNet normalisation."""
    images = shuffle_patches(images_uint8, factor, generator)
    crops = augment.random_resized_crop(images, input_size, generator, scale=(1 / factor, 1.0))
    return augment.normalize(crops.div_(255))


def build_network(name, num_classes, input_size):
    """An RDED student or teacher: torchvision's ResNet-18 (batch norm), with RDED's 'modified' stem for
    inputs of 64 px and less (3x3 conv, stride 1, no max-pool); or ConvNet-6 with batch norm."""
    if name == "resnet18":
        from torchvision.models import resnet18

        model = resnet18(weights=None, num_classes=num_classes)
        if input_size <= 64:
            model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            model.maxpool = nn.Identity()
        return model
    if name == "convnet6":
        from vlcp.networks import build_model

        return build_model("convnet6", num_classes, input_size, norm="batch")
    raise ValueError(f"the soft-label protocol trains one of {STUDENTS}, not {name!r}")


# The layouts a classifier's weights are saved in: the state dict itself; RDED's ``torch.save({"model":
# state_dict})`` (``synthesize/utils.py``, ``load_model``, reads ``checkpoint["model"]``); and
# ``{"state_dict": ...}`` (PyTorch Lightning and others). DataParallel prefixes every name with ``module.``.
WRAPPING_KEYS = ("model", "state_dict")


def unwrap_state(state):
    """The state dict inside a loaded checkpoint (one of ``WRAPPING_KEYS``, or the dict itself), with a
    ``module.`` prefix that every name carries removed; None when it holds no names -> tensors."""
    for key in WRAPPING_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items())
    ):
        return None
    if all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def read_weights(path):
    """A state dict from a safetensors file, or from a file of ``torch.save`` read with
    ``torch.load(weights_only=True)``: the weights alone, or under "model" or "state_dict" (``unwrap_state``).
    A checkpoint that also pickles other objects is refused, with the line that re-saves its weights."""
    import pickle

    path = str(path)
    resave = (
        f"if you trust the file, save its weights alone once: python -c \"import torch; c = torch.load('{path}', "
        f"weights_only=False); torch.save(c.get('model', c.get('state_dict', c)), '{path}.weights.pth')\" "
        "and point evaluate.teacher at the new file."
    )
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TeacherError(f"teacher weights {path}: no such file; set evaluate.teacher to the file.") from None
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0]
        raise TeacherError(
            f"teacher weights {path} pickle more than tensors, which are not read ({first}); {resave}"
        ) from None
    except Exception as err:  # noqa: BLE001 - whatever the reader refuses, the message is the same
        raise TeacherError(
            f"teacher weights {path} are not a weights file ({type(err).__name__}: {err}); "
            "give a .safetensors file or a state dict saved with torch.save(model.state_dict())."
        ) from None
    weights = unwrap_state(state)
    if weights is None:
        keys = ", ".join(map(repr, list(state)[:5])) if isinstance(state, dict) else type(state).__name__
        raise TeacherError(
            f"teacher weights {path} hold no state dict (names -> tensors), alone or under "
            f"{' or '.join(map(repr, WRAPPING_KEYS))} (found: {keys}); {resave}"
        )
    return weights


def load_teacher(path, name, num_classes, input_size):
    """The teacher ``name`` with the weights of ``path``, in eval mode, its parameters frozen."""
    model = build_network(name, num_classes, input_size)
    state = read_weights(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[:3]
        raise TeacherError(
            f"teacher weights {path} do not fit a {name} of {num_classes} classes at {input_size} px: {' '.join(first)}"
        ) from None
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model.eval()


def decay_groups(model, weight_decay):
    """RDED's ``get_parameters``: weight decay on parameters named weight with more than one dimension."""
    decay, rest = [], []
    for name, parameter in model.named_parameters():
        (decay if "weight" in name and parameter.dim() > 1 else rest).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def test_decoding(input_size):
    """RDED's test transform of one image: Resize(input // 7 * 8) + CenterCrop(input), an HWC uint8 array."""

    def decode(path):
        return np.asarray(center_crop(resize_shorter_side(load_rgb(path), input_size // 7 * 8), input_size))

    return decode


def test_tensor(paths, input_size):
    """uint8 test images (N, 3, input, input) through RDED's test transform."""
    return decode_batch(paths, test_decoding(input_size))


def is_test_epoch(epoch, epochs):
    """RDED tests after epoch e (0-based) when e % 10 == 9 or e is the last, and e > 0.8 E."""
    return (epoch % 10 == 9 or epoch == epochs - 1) and epoch > epochs * 0.8


def soft_label_step(student, teacher, optimizer, batch_uint8, settings, streams):
    """One training step of the soft-label protocol on a uint8 batch on the device; returns the loss."""
    s, on = settings, batch_uint8.device
    images = train_batch(batch_uint8, s["input_size"], s["factor"], streams[0])
    with torch.no_grad(), autocast(on, s["precision"]):
        mixed = augment.cutmix(images, torch.zeros(len(images), dtype=torch.long, device=on), s["cutmix"], *streams)[0]
        # RDED's train-accuracy pass, in train mode, so batch-norm statistics move; on the mixed batch,
        # as RDED's in-place CutMix leaves it (validation/main.py, train: mix_aug, then student(images))
        student(mixed)
        soft = teacher(mixed).float()
    with autocast(on, s["precision"]):
        logits = student(mixed).float()
    loss = distillation_loss(logits, soft, s["temperature"])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def soft_label_optimizer(student, settings):
    """RDED's AdamW: betas (0.9, 0.999), weight decay on weight matrices and kernels only."""
    return torch.optim.AdamW(
        decay_groups(student, settings["weight_decay"]), lr=settings["learning_rate"], betas=(0.9, 0.999)
    )


def train_soft(train_images, test_images, test_labels, student, teacher, settings, streams, progress=True):
    """Train ``student`` on the device-resident uint8 ``train_images`` against ``teacher``; return the
    accuracy record. ``settings``: the soft_label section (batch_size and input_size resolved) and
    test_batch_size; ``streams``: vlcp.evaluate.randomness of the run."""
    s = settings
    generator = streams[0]
    on = train_images.device
    optimizer = soft_label_optimizer(student, s)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: lr_factor(epoch, s["epochs"]))
    best, best_epoch, last = 0.0, 0, 0.0
    bar = tqdm(range(s["epochs"]), desc="train (soft labels)", unit="epoch", disable=not progress, file=sys.stderr)
    for epoch in bar:
        student.train()
        order = torch.randperm(len(train_images), device=on, generator=generator)
        for start in range(0, len(train_images), s["batch_size"]):
            loss = soft_label_step(
                student, teacher, optimizer, train_images[order[start : start + s["batch_size"]]], s, streams
            )
        if is_test_epoch(epoch, s["epochs"]):
            last, _ = accuracy(student, test_images, test_labels, s["test_batch_size"], s["precision"])
            if last > best:
                best, best_epoch = last, epoch + 1
            bar.set_postfix(loss=f"{loss.item():.4f}", acc=f"{last:.1f}", best=f"{best:.1f}")
        scheduler.step()
    return {"top1_best": round(best, 4), "top1_last": round(last, 4), "best_epoch": best_epoch}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_set_arguments(parser)
    parser.add_argument(
        "--teacher", required=True, type=Path, help="the teacher's weights (evaluate.teacher, or the teacher rule's)"
    )
    parser.add_argument("--teacher-architecture", required=True, choices=STUDENTS, help="the teacher's network")
    # resolved by the workflow (vlcp.config.soft_label_settings) for this IPC and class count
    resolved = {"type": int, "required": True}
    add_settings(parser, "soft_label", batch_size=resolved, input_size=resolved)
    parser.add_argument("--out", required=True, type=Path, help="CSV of one accuracy row")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.train_index:
        raise VlcpError(
            "the soft-label protocol evaluates distilled sets (--train-manifest or --train-dir), "
            "not a whole train split; 'full' is evaluated with hard labels."
        )
    if args.model not in STUDENTS:
        raise VlcpError(f"the soft-label protocol trains one of {STUDENTS}, not {args.model!r}")
    sets = sets_of(args)
    classes, train_paths = sets.classes, sets.train_paths
    on = device()
    side = min(load_rgb(train_paths[0]).size)
    # at their own side: patches are shuffled before the crop
    train_images = load_images(train_paths, resized(side), side, on, args.image_loading, "distilled set")
    test_paths = sets.val_paths
    test_images = load_images(
        test_paths, test_decoding(args.input_size), args.input_size, on, args.image_loading, "val split"
    )
    test_labels = torch.tensor(sets.val_labels, device=on)
    teacher = on_device(load_teacher(args.teacher, args.teacher_architecture, len(classes), args.input_size), on)
    torch.manual_seed(args.seed)  # the student's initial weights
    student = on_device(build_network(args.model, len(classes), args.input_size), on)
    settings = {k: getattr(args, k) for k in (*stage_keys("soft_label"), *training_execution("soft_label"))}
    result = train_soft(train_images, test_images, test_labels, student, teacher, settings, randomness(args.seed, on))
    row = accuracy_row(
        args,
        "rded",
        result,
        len(train_paths),
        len(test_paths),
        on,
        {**settings, "teacher": str(args.teacher), "teacher_architecture": args.teacher_architecture},
        len(classes),
    )
    contract.write_accuracy(args.out, [row])
    provenance.record(args.out, "rded", vars(args))
    print(
        f"top1_best {result['top1_best']:.2f} (epoch {result['best_epoch']}), top1_last {result['top1_last']:.2f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    run(main)

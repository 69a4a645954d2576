"""Stage 8, evaluate: train a classifier on a distilled set and test it on the real val split.

The Minimax protocol: RandomResizedCrop (scale 0.5-1), flip, colour jitter,
PCA lighting and CutMix on every batch; SGD with momentum and weight decay;
the learning rate multiplied by gamma at fixed fractions of the epochs. The
training images stay on the device and are augmented there in batches; the
val split is decoded once and tested in large batches.

Two accuracies are reported: ``top1_best``, the best test accuracy seen during
training (the authors' number; it uses the test set for model selection), and
``top1_last``, the accuracy after the last epoch.
"""

import argparse
import sys
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vlcp import augment, contract, provenance
from vlcp.cli import run
from vlcp.images import load_rgb, resize_center_crop
from vlcp.models import device
from vlcp.networks import build_model
from vlcp.seeds import derive
from vlcp.settings import add_settings, section, stage_keys
from vlcp.split_images import decode_batch, load_images


def resized(size):
    """The decoding of one image as Minimax resizes train and test images alike (``transform_imagenet``):
    torchvision's Resize(size) and CenterCrop(size), as an HWC uint8 array."""

    def decode(path):
        return np.asarray(resize_center_crop(load_rgb(path), size))

    return decode


def image_tensor(paths, size):
    """uint8 tensor (N, 3, size, size) of the images through Resize(size) and CenterCrop(size)."""
    return decode_batch(paths, resized(size))


def split_images(paths, size, on, loading, what):
    """The images of ``paths`` as ``image_tensor`` makes them, on ``on``: in memory or read from disk by
    batches (vlcp.split_images, ``execution.<stage>.image_loading``)."""
    return load_images(paths, resized(size), size, on, loading, what)


def distilled_set(listed, classes):
    """(paths, labels) of a distilled set's ``(class, path)`` listing; label = position in ``classes``."""
    label_of = {cls: i for i, cls in enumerate(classes)}
    unknown = sorted({cls for cls, _ in listed} - set(label_of))
    if unknown:
        raise contract.ContractError(f"the distilled set has class(es) {unknown[:5]} that the val index does not have")
    return [path for _, path in listed], [label_of[cls] for cls, _ in listed]


def autocast(on, precision):
    """The autocast context of a forward pass: bfloat16 on a GPU when asked for, else full float32 as the
    authors train (``evaluate.precision``)."""
    return torch.autocast(on.type, dtype=torch.bfloat16, enabled=on.type == "cuda" and precision == "bfloat16")


def predict(model, images, precision="float32"):
    """Predicted labels of uint8 images already at the input size."""
    x = augment.normalize(images.float() / 255)
    with autocast(x.device, precision):
        return model(x).argmax(1)


def fitting_batch(configured, free_bytes, per_image_bytes, headroom=0.7):
    """The test batch: ``configured``, or as many images as fit in ``headroom`` of the free memory."""
    if per_image_bytes <= 0:
        return configured
    return max(1, min(configured, int(free_bytes * headroom / per_image_bytes + 1e-9)))


@torch.inference_mode()
def test_batch_size(model, images, configured, precision="float32"):
    """``configured`` on the CPU; on a GPU, capped by what fits: a probe batch of 8 measures the peak
    memory per image, and free memory counts what the allocator holds unused."""
    on = images.device
    if on.type != "cuda":
        return configured
    model.eval()
    probe = min(configured, 8, len(images))
    torch.cuda.synchronize(on)
    torch.cuda.reset_peak_memory_stats(on)
    before = torch.cuda.memory_allocated(on)
    predict(model, images[:probe], precision)
    torch.cuda.synchronize(on)
    per_image = (torch.cuda.max_memory_allocated(on) - before) / probe
    free, _ = torch.cuda.mem_get_info(on)
    free += torch.cuda.memory_reserved(on) - torch.cuda.memory_allocated(on)
    model.train()
    return fitting_batch(configured, free, per_image)


@torch.inference_mode()
def accuracy(model, images, labels, batch_size, precision="float32"):
    """Top-1 accuracy (%) of ``model`` on uint8 images already at the input size, and the batch size
    it ran at: a batch that runs out of GPU memory is halved until one fits."""
    model.eval()
    while True:
        try:
            correct = sum(
                (predict(model, images[start : start + batch_size], precision) == labels[start : start + batch_size])
                .sum()
                .item()
                for start in range(0, len(images), batch_size)
            )
            break
        except torch.cuda.OutOfMemoryError:
            if batch_size == 1:
                raise
            batch_size //= 2
            print(f"test batch out of GPU memory; retrying at {batch_size}", file=sys.stderr)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    model.train()
    return 100.0 * correct / len(images), batch_size


def sgd_step(model, optimizer, images, labels, cutmix_beta, randomness, precision="float32"):
    """One CutMix training step on an augmented batch; returns the loss. ``randomness``: (torch
    generator on the images' device, numpy Generator), as ``augment.cutmix`` takes them."""
    images, labels_a, labels_b, lam = augment.cutmix(images, labels, cutmix_beta, *randomness)
    with autocast(images.device, precision):
        logits = model(images).float()
    loss = lam * F.cross_entropy(logits, labels_a) + (1 - lam) * F.cross_entropy(logits, labels_b)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def on_device(model, on):
    """``model`` on ``on``, in the memory layout its convolutions run fastest in there."""
    model = model.to(on)
    return model.to(memory_format=torch.channels_last) if on.type == "cuda" else model


def training_model(model_name, num_classes, input_size, norm, on):
    """A freshly initialised classifier on ``on``."""
    return on_device(build_model(model_name, num_classes, input_size, norm), on)


def milestone_epochs(fractions, epochs):
    """Epochs after which the learning rate drops: ``fraction x epochs`` rounded down, the fraction read as
    the nearest ratio of small integers (0.6667 -> 2/3), so 2000 epochs give Minimax's [1333, 1666]
    (``2 * epochs // 3``, ``5 * epochs // 6`` in ``train.py``)."""
    ratios = [Fraction(f).limit_denominator(100) for f in fractions]
    return [r.numerator * epochs // r.denominator for r in ratios]


def randomness(seed, on):
    """The random streams of one evaluation run of ``seed``: a torch generator on ``on`` for the shuffle
    and the per-image augmentation, a numpy Generator for CutMix's box (both from ``seeds.derive``)."""
    generator = torch.Generator(device=on).manual_seed(derive("evaluate", seed))
    return generator, np.random.default_rng(derive("cutmix", seed))


def train_epoch(model, optimizer, images, labels, settings, streams):
    """One pass over the device-resident uint8 train set in shuffled batches, augmented on the device;
    returns the last batch's loss. ``streams``: the run's ``randomness``."""
    s = settings
    generator = streams[0]
    order = torch.randperm(len(images), device=images.device, generator=generator)
    for start in range(0, len(images), s["batch_size"]):
        idx = order[start : start + s["batch_size"]]
        x = augment.train_batch(
            images[idx], s["input_size"], s["rrc_scale_min"], s["color_jitter"], s["lighting"], generator
        )
        loss = sgd_step(model, optimizer, x, labels[idx], s["cutmix_beta"], streams, s["precision"])
    return loss


def train_and_test(
    train_images,
    train_labels,
    test_images,
    test_labels,
    model_name,
    num_classes,
    settings,
    seed,
    progress=True,
    model=None,
):
    """Train ``model_name`` from ``seed`` on the device-resident uint8 train set; return the accuracy record.
    ``model``: a classifier already built (on the device) to train instead, such as a soft-label teacher.

    ``settings`` holds epochs, batch_size, learning_rate, momentum, weight_decay, milestones, gamma,
    rrc_scale_min, color_jitter, lighting, cutmix_beta, input_size, norm, precision, test_every, test_batch_size.
    """
    s = settings
    torch.manual_seed(seed)  # the classifier's initial weights
    on = train_images.device
    streams = randomness(seed, on)
    if model is None:
        model = training_model(model_name, num_classes, s["input_size"], s["norm"], on)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=s["learning_rate"], momentum=s["momentum"], weight_decay=s["weight_decay"]
    )
    milestones = milestone_epochs(s["milestones"], s["epochs"])
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=s["gamma"])
    best, best_epoch, last, test_batch = 0.0, 0, 0.0, None
    bar = tqdm(range(s["epochs"]), desc=f"train {model_name}", unit="epoch", disable=not progress, file=sys.stderr)
    for epoch in bar:
        loss = train_epoch(model, optimizer, train_images, train_labels, s, streams)
        scheduler.step()
        if (epoch + 1) % s["test_every"] == 0 or epoch + 1 == s["epochs"]:
            if test_batch is None:
                test_batch = test_batch_size(model, test_images, s["test_batch_size"], s["precision"])
                if test_batch < s["test_batch_size"]:
                    print(
                        f"testing in batches of {test_batch}, the most that fit in free GPU memory "
                        f"(execution.evaluate.test_batch_size is {s['test_batch_size']})",
                        file=sys.stderr,
                    )
            last, test_batch = accuracy(model, test_images, test_labels, test_batch, s["precision"])
            if last > best:
                best, best_epoch = last, epoch + 1
            bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{last:.1f}", best=f"{best:.1f}")
    return {"top1_best": round(best, 4), "top1_last": round(last, 4), "best_epoch": best_epoch}


def add_set_arguments(parser):
    """The arguments that name a training set, the val split and the run's identity (every protocol's)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--train-manifest", type=Path, help="a distilled set's manifest (<set>.manifest.tsv)")
    source.add_argument("--train-dir", type=Path, help="a distilled ImageFolder <dir>/<class>/<image>, not listed yet")
    source.add_argument("--train-index", nargs="+", type=Path, help="train index files (the 'full' baseline)")
    parser.add_argument(
        "--val-index", nargs="+", required=True, type=Path, help="val index files: every class, in label order"
    )
    parser.add_argument("--root", required=True, type=Path, help="dataset root of the index paths")
    parser.add_argument("--model", required=True)
    parser.add_argument("--seed", type=int, required=True, help="evaluation seed")
    parser.add_argument("--method", required=True)
    parser.add_argument("--ipc", required=True)
    parser.add_argument("--distill-seed", type=int, required=True)


def add_minimax_settings(parser):
    """The Minimax protocol's settings (config section evaluate). The workflow resolves the open values of
    the config (null, the epochs table) for this IPC and class count (vlcp.config.evaluation_settings);
    here they are plain required numbers."""
    resolved = {"type": int, "required": True}
    add_settings(
        parser,
        "evaluate",
        epochs={**resolved, "help": "training epochs"},
        test_every=resolved,
        batch_size=resolved,
        input_size=resolved,
        learning_rate={**resolved, "type": float},
        weight_decay={**resolved, "type": float},
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_set_arguments(parser)
    add_minimax_settings(parser)
    parser.add_argument("--out", required=True, type=Path, help="CSV of one accuracy row")
    return parser.parse_args(argv)


def load_sets(val_index, root, train_manifest=None, train_dir=None, train_index=None):
    """The classes, and the paths and labels of the train set and the val split, of an evaluation: the
    classes and their label order (position of first appearance) come from the val index; the train set
    is a distilled set's manifest or folder, or index files (a whole split)."""
    val = [r for path in val_index for r in contract.read_index(path)]
    classes = list(dict.fromkeys(r["class"] for r in val))
    label_of = {cls: i for i, cls in enumerate(classes)}
    if train_manifest:
        train_paths, train_labels = distilled_set(contract.read_manifest(train_manifest), classes)
    elif train_dir:
        train_paths, train_labels = distilled_set(contract.distilled_images(train_dir, classes), classes)
    else:
        train = [r for path in train_index for r in contract.read_index(path)]
        unknown = sorted({r["class"] for r in train} - set(label_of))
        if unknown:
            raise contract.ContractError(f"train classes {unknown[:5]} have no val images in {val_index[0]}")
        train_paths = [Path(root) / r["image"] for r in train]
        train_labels = [label_of[r["class"]] for r in train]
    print(f"loading {len(train_paths)} train and {len(val)} val images", file=sys.stderr)
    return SimpleNamespace(
        classes=classes,
        train_paths=train_paths,
        train_labels=train_labels,
        val_paths=[Path(root) / r["image"] for r in val],
        val_labels=[label_of[r["class"]] for r in val],
    )


def sets_of(args):
    """``load_sets`` of an evaluation's arguments (``add_set_arguments``)."""
    return load_sets(args.val_index, args.root, args.train_manifest, args.train_dir, args.train_index)


def training_execution(stage):
    """The keys of ``execution.<stage>`` that a training loop reads: all but how its images are loaded."""
    return [k for k in section(stage, execution=True) if k != "image_loading"]


def minimax_settings(args):
    """The Minimax settings of parsed arguments (``add_minimax_settings``), as train_and_test takes them."""
    return {k: getattr(args, k) for k in ("epochs", *stage_keys("evaluate"), *training_execution("evaluate"))}


def accuracy_row(args, protocol, result, train_count, test_count, on, settings, classes):
    """The accuracy.csv row of one evaluation run: who, what it scored, on how many images of how many
    classes (a set can hold fewer than IPC x classes: a class with fewer images), and its settings."""
    return {
        "protocol": protocol,
        "method": args.method,
        "ipc": args.ipc,
        "seed": args.distill_seed,
        "model": args.model,
        "eval_seed": args.seed,
        **result,
        "train_images": train_count,
        "test_images": test_count,
        "classes": classes,
        "device": on.type,
        **{k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in settings.items()},
    }


def main(argv=None):
    args = parse_args(argv)
    sets = sets_of(args)
    classes, train_paths = sets.classes, sets.train_paths
    on = device()
    side = min(load_rgb(train_paths[0]).size) if train_paths else args.input_size
    if side < args.input_size:
        print(
            f"note: the train images are {side} px and evaluate.input_size is {args.input_size}: every image is "
            f"upsampled, at about {(args.input_size / side) ** 2:.0f}x the compute of {side} px",
            file=sys.stderr,
        )
    train_images = split_images(train_paths, args.input_size, on, args.image_loading, "train set")
    test_paths = sets.val_paths
    test_images = split_images(test_paths, args.input_size, on, args.image_loading, "val split")
    test_labels = torch.tensor(sets.val_labels, device=on)
    settings = minimax_settings(args)
    result = train_and_test(
        train_images,
        torch.tensor(sets.train_labels, device=on),
        test_images,
        test_labels,
        args.model,
        len(classes),
        settings,
        args.seed,
    )
    row = accuracy_row(args, "minimax", result, len(train_paths), len(test_paths), on, settings, len(classes))
    contract.write_accuracy(args.out, [row])
    provenance.record(args.out, "evaluate", vars(args))
    print(
        f"top1_best {result['top1_best']:.2f} (epoch {result['best_epoch']}), top1_last {result['top1_last']:.2f}",
        file=sys.stderr,
    )
    if on.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(on) / 2**30:.1f} GiB", file=sys.stderr)


if __name__ == "__main__":
    run(main)

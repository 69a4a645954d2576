"""One soft-label (RDED protocol) training epoch: vlcp.rded's device loop vs RDED's way, in epochs/s.

The shape of ImageNet-1K at IPC 10 by default: 10,000 images of 224 px, 1000 classes, ResNet-18 student
and teacher (random weights: speed does not depend on them), batch 100 (RDED's rule). RDED's way
(LINs-lab/RDED validation/main.py): a DataLoader of in-memory PIL images through ToTensor,
ShufflePatches, RandomResizedCrop (antialiased), flip and normalisation per image in worker processes,
then on the device CutMix, the student's train-accuracy pass, the teacher's pass and the student's step.
Ours: the uint8 set on the device, each batch augmented there (vlcp.rded.soft_label_step), the teacher in
inference mode, channels_last on a GPU. Both do the same model work; the difference is the data path.

    python bench/soft_label.py          # a CPU-sized check: 400 images of 64 px, 10 classes, ConvNet-6
    python bench/soft_label.py --full   # ImageNet-1K at IPC 10: 10,000 images of 224 px, ResNet-18 (a GPU)
"""

import argparse
import random

import numpy as np
import torch
import torch.nn.functional as F
from common import device, report, timed
from PIL import Image

from vlcp import augment, rded
from vlcp.config import rded_batch_size
from vlcp.evaluate import on_device, randomness


class ShufflePatches(torch.nn.Module):
    """RDED's ShufflePatches (validation/utils.py), restated: strips from python's global random state."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def shuffle(self, img):
        tw = img.shape[2] // self.factor
        patches = [img[..., i * tw : (i + 1) * tw] for i in range(self.factor)]
        random.shuffle(patches)
        return torch.cat(patches, -1)

    def forward(self, img):
        return self.shuffle(self.shuffle(img).permute(0, 2, 1)).permute(0, 2, 1)


class PilSet(torch.utils.data.Dataset):
    def __init__(self, images, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.transform(self.images[index])


def rded_cutmix(images, beta=1.0):
    """RDED's cutmix (validation/utils.py): numpy's global state for the ratio and box, torch's for the shuffle."""
    perm = torch.randperm(images.shape[0], device=images.device)
    lam = np.random.beta(beta, beta)
    h, w = images.shape[2:]
    cut = np.sqrt(1.0 - lam)
    cw, ch = int(w * cut), int(h * cut)
    cx, cy = np.random.randint(w), np.random.randint(h)
    x1, x2 = np.clip(cx - cw // 2, 0, w), np.clip(cx + cw // 2, 0, w)
    y1, y2 = np.clip(cy - ch // 2, 0, h), np.clip(cy + ch // 2, 0, h)
    images[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
    return images


def rded_epoch(loader, student, teacher, optimizer, settings, on):
    for images in loader:
        images = images.to(on, non_blocking=True)
        with torch.no_grad():
            mixed = rded_cutmix(images.clone(), settings["cutmix"])
            student(images)
            soft = F.softmax(teacher(mixed) / settings["temperature"], dim=1)
        optimizer.zero_grad()
        loss = F.kl_div(F.log_softmax(student(mixed) / settings["temperature"], dim=1), soft, reduction="batchmean")
        loss.backward()
        optimizer.step()


def vlcp_epoch(images, student, teacher, optimizer, settings, streams):
    order = torch.randperm(len(images), device=images.device, generator=streams[0])
    for start in range(0, len(images), settings["batch_size"]):
        rded.soft_label_step(
            student, teacher, optimizer, images[order[start : start + settings["batch_size"]]], settings, streams
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="ImageNet-1K's shape at IPC 10 with ResNet-18")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--size", type=int, default=64, help="side of the images and of the input")
    parser.add_argument("--model", default="convnet6", choices=rded.STUDENTS)
    parser.add_argument("--factor", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per loop")
    args = parser.parse_args()
    if args.full:
        args.images, args.classes, args.size, args.model, args.workers = 10_000, 1000, 224, "resnet18", 8
    on = device()
    ipc = max(1, args.images // args.classes)
    settings = {
        "batch_size": rded_batch_size(ipc, args.classes),
        "input_size": args.size,
        "factor": args.factor,
        "cutmix": 1.0,
        "temperature": 20.0,
        "learning_rate": 1e-3,
        "weight_decay": 0.01,
        "precision": "bfloat16" if on.type == "cuda" else "float32",
    }
    arrays = np.random.default_rng(0).integers(0, 256, (args.images, args.size, args.size, 3), dtype=np.uint8)
    torch.manual_seed(0)
    teacher = on_device(rded.build_network(args.model, args.classes, args.size), on).eval().requires_grad_(False)

    def fresh_student():
        torch.manual_seed(1)
        model = on_device(rded.build_network(args.model, args.classes, args.size), on)
        return model, rded.soft_label_optimizer(model, settings)

    from torchvision import transforms

    transform = transforms.Compose(
        [
            transforms.ToTensor(),
            ShufflePatches(args.factor),
            transforms.RandomResizedCrop(args.size, scale=(1 / args.factor, 1), antialias=True),
            transforms.RandomHorizontalFlip(),
            transforms.Normalize(augment.IMAGENET_MEAN, augment.IMAGENET_STD),
        ]
    )
    loader = torch.utils.data.DataLoader(
        PilSet([Image.fromarray(a) for a in arrays], transform),
        batch_size=settings["batch_size"],
        shuffle=True,
        num_workers=args.workers,
        pin_memory=on.type == "cuda",
        persistent_workers=args.workers > 0,
    )
    student, optimizer = fresh_student()
    next(iter(loader))  # workers started outside the timing
    base = timed(
        lambda: [rded_epoch(loader, student, teacher, optimizer, settings, on) for _ in range(args.epochs)], on
    )
    images = torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous().to(on)
    student, optimizer = fresh_student()
    streams = randomness(0, on)
    ours = timed(
        lambda: [vlcp_epoch(images, student, teacher, optimizer, settings, streams) for _ in range(args.epochs)], on
    )
    rows = [
        (
            args.images,
            args.classes,
            args.size,
            args.model,
            settings["batch_size"],
            f"{args.epochs / base:.3f}",
            f"{args.epochs / ours:.3f}",
            f"{base / ours:.2f}x",
        )
    ]
    print(f"device: {on}, {args.workers} loader workers, {settings['precision']}")
    report(rows, ("images", "classes", "px", "model", "batch", "RDED's way epochs/s", "vlcp epochs/s", "speed-up"))


if __name__ == "__main__":
    main()

"""Evaluation data path: device-resident batch augmentation vs a PIL DataLoader, in epochs/s.

Both train the same classifier with the same SGD settings on IPC x 10 images of 256 px
(random pixels: speed does not depend on content) at 224 px input; only the way batches are
made differs. The baseline is the authors' way: torchvision PIL transforms (RandomResizedCrop,
flip, ColorJitter, lighting, normalisation) in a DataLoader, CutMix on the batch.
Targets: at least 5x on a GPU, 2x on the CPU.

    python bench/evaluate.py [--model resnetap10] [--epochs 2] [--workers 2]
"""

import argparse
import math

import numpy as np
import torch
from common import device, report, timed
from PIL import Image

from vlcp import augment
from vlcp.evaluate import sgd_step, train_epoch, training_model
from vlcp.networks import build_model


class Lighting:
    """PCA lighting noise on a tensor image, as in the authors' pipeline."""

    def __init__(self, strength):
        self.strength = strength
        self.eigval = torch.tensor(augment.PCA_EIGVAL)
        self.eigvec = torch.tensor(augment.PCA_EIGVEC)

    def __call__(self, img):
        alpha = torch.randn(3) * self.strength
        return img + (self.eigvec @ (alpha * self.eigval)).view(3, 1, 1)


class PilSet(torch.utils.data.Dataset):
    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def optimizer_for(model):
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)


def device_epochs(args, arrays, labels, settings, on):
    """vlcp's evaluation loop: the uint8 set kept on the device, each batch augmented there."""
    torch.manual_seed(0)
    model = training_model(args.model, 10, 224, "instance", on)
    optimizer = optimizer_for(model)
    resident = torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous().to(on)
    for _ in range(args.epochs):
        train_epoch(model, optimizer, resident, labels.to(on), settings)


def pil_epochs(args, arrays, labels, on):
    """The authors' loop: torchvision PIL transforms per image in a DataLoader, CutMix on the batch."""
    from torchvision import transforms

    torch.manual_seed(0)
    model = build_model(args.model, 10, 224).to(on)
    optimizer = optimizer_for(model)
    transform = transforms.Compose([
        transforms.RandomResizedCrop(224, scale=(0.5, 1.0)), transforms.RandomHorizontalFlip(),
        transforms.ColorJitter(0.4, 0.4, 0.4), transforms.ToTensor(), Lighting(0.1),
        transforms.Normalize(augment.IMAGENET_MEAN, augment.IMAGENET_STD),
    ])
    pil = [Image.fromarray(a) for a in arrays]
    loader = torch.utils.data.DataLoader(PilSet(pil, labels, transform), batch_size=64, shuffle=True,
                                         num_workers=args.workers, persistent_workers=args.workers > 0)
    for _ in range(args.epochs):
        for x, y in loader:
            sgd_step(model, optimizer, x.to(on, non_blocking=True), y.to(on), 1.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="convnet6")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ipc", nargs="+", type=int, default=[10, 50])
    args = parser.parse_args()
    on = device()
    rows = []
    settings = {"batch_size": 64, "input_size": 224, "rrc_scale_min": 0.5, "color_jitter": 0.4, "lighting": 0.1,
                "cutmix_beta": 1.0}
    for ipc in args.ipc:
        n = ipc * 10
        arrays = np.random.default_rng(0).integers(0, 256, (n, 256, 256, 3), dtype=np.uint8)
        labels = torch.arange(n) % 10
        base = timed(lambda: pil_epochs(args, arrays, labels, on), on) / args.epochs
        ours = timed(lambda: device_epochs(args, arrays, labels, settings, on), on) / args.epochs
        rows.append((ipc, n, f"{1 / base:.3f}", f"{1 / ours:.3f}", f"{base / ours:.2f}x"))
    print(f"device: {on}, model: {args.model}, input 224, batch 64")
    report(rows, ("IPC", "images", "PIL loader epochs/s", "on-device epochs/s", "speed-up"))


if __name__ == "__main__":
    main()

"""Evaluation data path: device-resident batch augmentation vs a PIL DataLoader, in epochs/s.

Both paths train the same classifier with the same SGD step on IPC x 10 random-pixel images
(speed does not depend on content); only the way batches are made differs. The baseline is
the authors' way: torchvision PIL transforms (RandomResizedCrop, flip, ColorJitter, lighting,
normalisation) per image in a DataLoader, CutMix on the batch. Ours is vlcp.evaluate's loop:
the uint8 set kept on the device, each batch augmented there. Two figures per size and IPC:
the data path alone (an epoch of augmented batches, no model) and whole training epochs.
Sizes: 224 px input from 256 px images (ImageNet presets), 32 from 32 (CIFAR presets, demo).
Targets: at least 5x on a GPU, 2x on the CPU.

    python bench/evaluate.py [--model convnet6] [--epochs 2] [--workers 2] [--sizes 224 32] [--ipc 10 50]
"""

import argparse

import numpy as np
import torch
from common import device, report, timed
from PIL import Image

from vlcp import augment
from vlcp.evaluate import randomness, sgd_step, train_epoch, training_model
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


def pil_loader(arrays, labels, size, workers):
    from torchvision import transforms

    transform = transforms.Compose(
        [
            transforms.RandomResizedCrop(size, scale=(0.5, 1.0)),
            transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(0.4, 0.4, 0.4),
            transforms.ToTensor(),
            Lighting(0.1),
            transforms.Normalize(augment.IMAGENET_MEAN, augment.IMAGENET_STD),
        ]
    )
    pil = [Image.fromarray(a) for a in arrays]
    return torch.utils.data.DataLoader(
        PilSet(pil, labels, transform), batch_size=64, shuffle=True, num_workers=workers, persistent_workers=workers > 0
    )


class PilLoop:
    """The authors' loop: PIL transforms per image in a DataLoader, CutMix on the batch."""

    def __init__(self, args, arrays, labels, size, on, train):
        torch.manual_seed(0)
        self.on, self.train = on, train
        self.streams = randomness(0, on)
        self.model = build_model(args.model, 10, size).to(on) if train else None
        self.optimizer = optimizer_for(self.model) if train else None
        self.loader = pil_loader(arrays, labels, size, args.workers)

    def step(self, x, y):
        x, y = x.to(self.on, non_blocking=True), y.to(self.on)
        if self.train:
            sgd_step(self.model, self.optimizer, x, y, 1.0, self.streams)
        else:
            augment.cutmix(x, y, 1.0, *self.streams)

    def warm(self):
        """One batch: starts the loader's workers and the kernels' first-call setup, outside the timing."""
        self.step(*next(iter(self.loader)))

    def epoch(self):
        for x, y in self.loader:
            self.step(x, y)


class DeviceLoop:
    """vlcp's loop (vlcp.evaluate.train_epoch): the uint8 set on the device, each batch augmented there."""

    def __init__(self, args, arrays, labels, size, on, train):
        torch.manual_seed(0)
        self.train, self.size = train, size
        self.streams = randomness(0, on)
        self.settings = {
            "batch_size": 64,
            "input_size": size,
            "rrc_scale_min": 0.5,
            "color_jitter": 0.4,
            "lighting": 0.1,
            "cutmix_beta": 1.0,
            "precision": "float32",
        }
        self.images = torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous().to(on)
        self.labels = labels.to(on)
        self.model = training_model(args.model, 10, size, "instance", on) if train else None
        self.optimizer = optimizer_for(self.model) if train else None

    def warm(self):
        self.run(self.images[:64], self.labels[:64])

    def epoch(self):
        self.run(self.images, self.labels)

    def run(self, images, labels):
        if self.train:
            train_epoch(self.model, self.optimizer, images, labels, self.settings, self.streams)
            return
        generator = self.streams[0]
        order = torch.randperm(len(images), device=images.device, generator=generator)
        for start in range(0, len(images), 64):
            idx = order[start : start + 64]
            batch = augment.train_batch(images[idx], self.size, 0.5, 0.4, 0.1, generator)
            augment.cutmix(batch, labels[idx], 1.0, *self.streams)


def epochs_per_second(loop_class, args, arrays, labels, size, on, train):
    """Steady-state epochs/s: set-up and one warm-up batch outside the timing, then ``args.epochs`` epochs."""
    loop = loop_class(args, arrays, labels, size, on, train)
    loop.warm()
    seconds = timed(lambda: [loop.epoch() for _ in range(args.epochs)], on, warmup=False)
    return args.epochs / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="convnet6")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sizes", nargs="+", type=int, default=[224, 32], help="model input sizes")
    parser.add_argument("--ipc", nargs="+", type=int, default=[10, 50])
    args = parser.parse_args()
    on = device()
    rows = []
    for size in args.sizes:
        source = 256 if size == 224 else size
        for ipc in args.ipc:
            n = ipc * 10
            arrays = np.random.default_rng(0).integers(0, 256, (n, source, source, 3), dtype=np.uint8)
            labels = torch.arange(n) % 10
            for what, train in (("data path", False), ("training", True)):
                base = epochs_per_second(PilLoop, args, arrays, labels, size, on, train)
                ours = epochs_per_second(DeviceLoop, args, arrays, labels, size, on, train)
                rows.append((f"{source}->{size}", ipc, n, what, f"{base:.3f}", f"{ours:.3f}", f"{ours / base:.2f}x"))
                print(*rows[-1], flush=True)
    print(f"device: {on}, model: {args.model}, batch 64, {args.workers} loader workers")
    report(rows, ("px", "IPC", "images", "measured", "PIL loader epochs/s", "on-device epochs/s", "speed-up"))


if __name__ == "__main__":
    main()

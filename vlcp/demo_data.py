"""The embedded demo set: scikit-learn's handwritten digits written as an ImageFolder.

1797 real 8x8 grayscale scans of the digits 0-9 ship inside scikit-learn, so the
demo needs no download. They are upscaled and saved as grayscale PNGs, which also
exercises the index's conversion to RGB.
"""

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image

from vlcp.atomic import atomic_dir
from vlcp.cli import run
from vlcp.errors import VlcpError

CLASSES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
LABELS = {name: f"handwritten digit {name}" for name in CLASSES}


def split_digits(train_per_class, val_per_class, seed):
    """``{split: {class: [8x8 uint8 arrays]}}``, a seeded disjoint split of each digit class."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    pixels = (digits.images * (255 / 16)).round().astype(np.uint8)
    split = {"train": {}, "val": {}}
    for digit, name in enumerate(CLASSES):
        order = rng.permutation(np.flatnonzero(digits.target == digit))
        if len(order) < train_per_class + val_per_class:
            raise VlcpError(
                f"digit {name} has {len(order)} images; demo.train_per_class + demo.val_per_class "
                f"= {train_per_class + val_per_class} is too many"
            )
        split["val"][name] = [pixels[i] for i in order[:val_per_class]]
        split["train"][name] = [pixels[i] for i in order[val_per_class : val_per_class + train_per_class]]
    return split


def digit_image(array, image_size):
    """One 8x8 scan as the demo's grayscale PNG holds it: upscaled bicubic to ``image_size``."""
    return Image.fromarray(array).resize((image_size, image_size), Image.Resampling.BICUBIC)


def write_demo(root, train_per_class, val_per_class, image_size, seed):
    """Write ``root/{train,val}/<class>/<n>.png`` and ``root/labels.tsv``, all at once."""
    with atomic_dir(root) as tmp:
        for split, classes in split_digits(train_per_class, val_per_class, seed).items():
            for name, images in classes.items():
                folder = tmp / split / name
                folder.mkdir(parents=True)
                for i, array in enumerate(images):
                    digit_image(array, image_size).save(folder / f"{i:04d}.png")
        with open(tmp / "labels.tsv", "w", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(["class", "label"])
            writer.writerows(LABELS.items())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--train-per-class", type=int, default=40)
    parser.add_argument("--val-per-class", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_demo(args.root, args.train_per_class, args.val_per_class, args.image_size, args.seed)


if __name__ == "__main__":
    run(main)

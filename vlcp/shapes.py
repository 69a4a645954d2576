"""A dataset that is not digits: coloured shapes drawn from a seed, as an ImageFolder.

Six classes (circle, square, triangle, cross, ring, bar), each image a shape of random colour, size,
place and rotation on a background of another random colour. It is what a CPU trial of a dataset
other than the demo's runs on (bench/cpu_trial.py, tests/test_readme.py), with nothing downloaded.

    python -m vlcp.shapes OUT [--train 40 --val 20 --size 64 --seed 0]
"""

import argparse
import math
from pathlib import Path

import numpy as np

CLASSES = ("bar", "circle", "cross", "ring", "square", "triangle")


def polygon(cx, cy, radius, sides, angle):
    return [
        (
            cx + radius * math.cos(angle + 2 * math.pi * k / sides),
            cy + radius * math.sin(angle + 2 * math.pi * k / sides),
        )
        for k in range(sides)
    ]


def rotated(points, cx, cy, angle):
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in points]


def draw_shape(cls, size, rng):
    """One ``size`` x ``size`` RGB image of a shape of class ``cls``, drawn from ``rng``."""
    from PIL import Image, ImageDraw

    background = tuple(int(v) for v in rng.integers(0, 256, 3))
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    while sum(abs(a - b) for a, b in zip(colour, background)) < 200:  # a shape that shows
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    img = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(img)
    r = size * rng.uniform(0.22, 0.38)
    cx, cy = (size * rng.uniform(0.38, 0.62) for _ in range(2))
    angle = rng.uniform(0, 2 * math.pi)
    width = max(2, int(r * 0.35))
    if cls == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif cls == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=width)
    elif cls == "square":
        draw.polygon(polygon(cx, cy, r * 1.1, 4, angle), fill=colour)
    elif cls == "triangle":
        draw.polygon(polygon(cx, cy, r * 1.15, 3, angle), fill=colour)
    elif cls == "bar":
        half = width / 2
        draw.polygon(
            rotated(
                [(cx - r, cy - half), (cx + r, cy - half), (cx + r, cy + half), (cx - r, cy + half)], cx, cy, angle
            ),
            fill=colour,
        )
    elif cls == "cross":
        half = width / 2
        for turn in (0, math.pi / 2):
            corners = [(cx - r, cy - half), (cx + r, cy - half), (cx + r, cy + half), (cx - r, cy + half)]
            draw.polygon(rotated(corners, cx, cy, angle + turn), fill=colour)
    else:
        raise ValueError(f"no shape {cls!r}; the classes are {', '.join(CLASSES)}")
    return img


def write_shapes(root, train=40, val=20, size=64, seed=0, classes=CLASSES):
    """``root/{train,val}/<class>/<n>.png``: ``train`` and ``val`` images per class; returns ``root``."""
    root = Path(root)
    for split, count in (("train", train), ("val", val)):
        for index, cls in enumerate(classes):
            rng = np.random.default_rng([seed, index, 0 if split == "train" else 1])
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(count):
                draw_shape(cls, size, rng).save(folder / f"{n}.png")
    return root


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a new folder for the ImageFolder")
    parser.add_argument("--train", type=int, default=40, help="train images per class")
    parser.add_argument("--val", type=int, default=20, help="val images per class")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists; give a new folder")
    write_shapes(args.out, args.train, args.val, args.size, args.seed)
    print(f"{len(CLASSES)} classes of {args.train} train and {args.val} val images under {args.out}")


if __name__ == "__main__":
    main()

"""Real-image baselines: IPC real train images per class, chosen at random, by herding or by k-center.

Herding and k-center work on the stage-4 latents, the features the image
prototypes come from. The chosen images are written at the evaluation size as
an ImageFolder class folder, like a synthesized one, so they go through the
same evaluation.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from vlcp import contract, provenance
from vlcp.atomic import atomic_dir
from vlcp.cli import run
from vlcp.images import load_rgb, resize_center_crop
from vlcp.names import BASELINES as METHODS
from vlcp.parts import each_class


def select_random(n, ipc, rng):
    """``ipc`` distinct indices (all of them, in order, if ``n <= ipc``)."""
    return list(range(n)) if n <= ipc else sorted(rng.choice(n, size=ipc, replace=False).tolist())


def select_herding(features, ipc):
    """Greedy herding (Welling 2009): each pick brings the running mean of the picks closest to the class mean."""
    mean = features.mean(0)
    chosen, total = [], np.zeros_like(mean)
    available = np.ones(len(features), dtype=bool)
    for k in range(min(ipc, len(features))):
        candidate_means = (total + features) / (k + 1)
        distance = np.linalg.norm(candidate_means - mean, axis=1)
        distance[~available] = np.inf
        pick = int(distance.argmin())
        chosen.append(pick)
        available[pick] = False
        total += features[pick]
    return chosen


def select_kcenter(features, ipc, rng):
    """Greedy k-center: a random first pick, then always the point farthest from all picks."""
    n = len(features)
    first = int(rng.integers(n))
    chosen = [first]
    distance = np.linalg.norm(features - features[first], axis=1)
    while len(chosen) < min(ipc, n):
        pick = int(distance.argmax())
        chosen.append(pick)
        distance = np.minimum(distance, np.linalg.norm(features - features[pick], axis=1))
    return chosen


def select(method, images, ipc, seed, features=None):
    """Indices of the chosen images; ``features`` (N, D) are needed by herding and k-center."""
    rng = np.random.default_rng(seed)
    if method == "random":
        return select_random(len(images), ipc, rng)
    if features is None:
        raise ValueError(f"{method} needs latents")
    if method == "herding":
        return select_herding(features, ipc)
    if method == "kcenter":
        return select_kcenter(features, ipc, rng)
    raise ValueError(f"unknown baseline {method!r}; choose one of {METHODS}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", required=True, choices=METHODS)
    parser.add_argument("--index", nargs="+", required=True, type=Path, help="per class: train index")
    parser.add_argument("--latents", nargs="+", type=Path, help="per class: latents (herding, kcenter)")
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--ipc", required=True, type=int)
    parser.add_argument("--seed", required=True, type=int)
    parser.add_argument("--size", required=True, type=int, help="side of the written images (evaluation size)")
    parser.add_argument("--out", nargs="+", required=True, type=Path, help="per class: output folder of <k>.png")
    args = parser.parse_args(argv)
    for one in each_class(args, ("index", "latents", "out")):
        select_class(one)


def select_class(args):
    images = [r["image"] for r in contract.read_index(args.index)]
    features = None
    if args.latents:
        tensors, order = contract.read_latents(args.latents)
        if order != images:
            raise contract.ContractError(f"{args.latents} and {args.index} list different images; rerun encode")
        features = tensors[contract.LATENTS].reshape(len(order), -1).double().numpy()
    chosen = select(args.method, images, args.ipc, args.seed, features)
    if len(images) < args.ipc:
        print(f"warning: only {len(images)} images for IPC {args.ipc}; all are used", file=sys.stderr)
    with atomic_dir(args.out) as tmp:
        for k, i in enumerate(chosen):
            resize_center_crop(load_rgb(args.root / images[i]), args.size).save(tmp / f"{k}.png")
        provenance.record(tmp, "select", {**vars(args), "chosen": [images[i] for i in chosen]})
    print(f"{args.method}: {[images[i] for i in chosen]}", file=sys.stderr)


if __name__ == "__main__":
    run(main)

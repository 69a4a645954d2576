"""The method d4m: D4M's image prototypes and prompts of one class (D4M, CVPR 2024, suduo94/D4M).

D4M clusters each class's VAE latents with scikit-learn's MiniBatchKMeans (IPC clusters, k-means++
initialisation on the first chunk, ``random_state`` 0) fed by ``partial_fit`` in chunks of
km_expand x IPC latents as its shuffled loader yields them, and prompts the base Stable Diffusion with the
class's label text alone. Here the class's latents are stage 4's, visited in an order shuffled by the
distillation seed (D4M's loader is unseeded), and ``random_state`` is the distillation seed (D4M's 0 is
seed 0). The last chunk of a class, smaller than km_expand x IPC, is dropped as D4M's code drops it for
every class but the one its loader ends on (``--leftover fit`` fits it when it holds at least IPC).

The outputs are the contract's clusters JSON, centres and text prototypes, so the synthesize stage
reads them as it reads VLCP's (vlcp.synthesize), with the base model and D4M's pipeline settings.
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from vlcp import contract, provenance
from vlcp.cli import run
from vlcp.parts import each_class
from vlcp.seeds import derive
from vlcp.settings import add_settings


def visiting_order(n, seed):
    """The order D4M's prototypes see a class's n latents in: a permutation drawn from the seed."""
    return np.random.default_rng(derive("d4m", "order", seed)).permutation(n)


def chunks(n, ipc, km_expand, leftover="drop"):
    """Index ranges (start, stop) of the partial fits over n latents: full chunks of km_expand x IPC, and
    the last, shorter one only for ``leftover`` 'fit' when it holds at least IPC latents."""
    size = km_expand * ipc
    ranges = [(start, start + size) for start in range(0, n - size + 1, size)]
    rest = n - len(ranges) * size
    if leftover == "fit" and rest >= ipc:
        ranges.append((n - rest, n))
    return ranges


def minibatch_prototypes(features, ipc, seed, km_expand=1, leftover="drop"):
    """``(centres, labels, fitted)`` of D4M's mini-batch k-means of ``features`` (N, D) float rows, fed in
    ``visiting_order``: the IPC centres, each row's nearest centre (-1 for the rows of no partial fit),
    and the number of rows fitted. None when no chunk can be fitted (fewer than IPC rows)."""
    from sklearn.cluster import MiniBatchKMeans

    n = len(features)
    order = visiting_order(n, seed)
    ranges = chunks(n, ipc, km_expand, leftover)
    if not ranges:
        return None
    model = MiniBatchKMeans(n_clusters=ipc, random_state=seed, batch_size=km_expand * ipc, n_init="auto")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # duplicate points: fewer distinct clusters
        for start, stop in ranges:
            model.partial_fit(features[order[start:stop]])
    fitted = np.zeros(n, dtype=bool)
    for start, stop in ranges:
        fitted[order[start:stop]] = True
    labels = np.full(n, -1)
    labels[fitted] = model.predict(features[fitted])
    return model.cluster_centers_, labels, int(fitted.sum())


def class_prototypes(latents, ipc, seed, km_expand=1, leftover="drop"):
    """``(labels, centres, note)`` of one class's latents (N, C, H, W): the cluster of each image (-1 when
    not fitted), the IPC centres (IPC, C, H, W), and a note when the class is too small for D4M's fit."""
    n = len(latents)
    features = latents.reshape(n, -1).double().numpy()
    found = minibatch_prototypes(features, ipc, seed, km_expand, leftover)
    if found is None:
        # Too few latents for one chunk: each image is its own prototype, reused in turn (as stage 5 does).
        note = f"only {n} images for IPC {ipc} (D4M fits chunks of {km_expand * ipc}): each image is a prototype"
        centres = np.stack([features[i % n] for i in range(ipc)])
        return np.arange(n), torch.from_numpy(centres).float().reshape(ipc, *latents.shape[1:]), note
    centres, labels, fitted = found
    note = None if fitted == n else f"{n - fitted} of {n} latents in no chunk (the last, short one is dropped)"
    return labels, torch.from_numpy(centres).float().reshape(ipc, *latents.shape[1:]), note


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latents", nargs="+", required=True, type=Path, help="per class: latents (safetensors)")
    parser.add_argument("--index", nargs="+", required=True, type=Path, help="per class: train index (the label text)")
    parser.add_argument("--ipc", required=True, type=int)
    parser.add_argument("--seed", required=True, type=int)
    add_settings(parser, "d4m")
    parser.add_argument("--clusters", nargs="+", required=True, type=Path, help="per class: clusters JSON")
    parser.add_argument("--centres", nargs="+", required=True, type=Path, help="per class: centres safetensors")
    parser.add_argument("--prototypes", nargs="+", required=True, type=Path, help="per class: prompts JSON")
    args = parser.parse_args(argv)
    names = ("latents", "index", "clusters", "centres", "prototypes")
    for one in each_class(args, names):
        d4m_class(one)


def d4m_class(args):
    from vlcp.cluster import clusters_record

    tensors, images = contract.read_latents(args.latents)
    label = contract.read_index(args.index)[0]["label"]
    labels, centres, note = class_prototypes(
        tensors[contract.LATENTS], args.ipc, args.seed, args.km_expand, args.leftover
    )
    clusters = clusters_record(images, labels, labels >= 0, args.ipc, args.seed, note)
    if note:
        print(f"note: {note}", file=sys.stderr)
    prompts = [{"prompt": label, "image": None, "keywords": [], "nonrepresentative": []} for _ in range(args.ipc)]
    contract.write_clusters(args.clusters, args.centres, clusters, centres)
    contract.write_prototypes(args.prototypes, prompts)
    provenance.record(args.clusters, "d4m", vars(args))
    sizes = [len(m) for m in clusters["members"]]
    print(f"{len(images)} latents, cluster sizes {sizes}, prompt {label!r}", file=sys.stderr)


if __name__ == "__main__":
    run(main)

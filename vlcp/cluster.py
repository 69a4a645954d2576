"""Stage 5, cluster: image prototypes of one class for one IPC and seed.

Local Outlier Factor drops the least typical latents (contamination alpha; 0
keeps all), then k-means++ on the flattened inliers gives IPC centres: the
image prototypes, as in D4M and the paper's section 3.2.
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from vlcp import contract, provenance
from vlcp.cli import run
from vlcp.parallel import cpu_threads
from vlcp.parts import each_class
from vlcp.settings import add_settings


def inlier_mask(features, contamination, n_neighbors):
    """Boolean mask of the rows that LOF keeps; all True when contamination is 0 or too few rows."""
    from sklearn.neighbors import LocalOutlierFactor

    if contamination == 0 or len(features) < 3:
        return np.ones(len(features), dtype=bool)
    lof = LocalOutlierFactor(
        n_neighbors=min(n_neighbors, len(features) - 1), contamination=contamination, n_jobs=cpu_threads()
    )
    return lof.fit_predict(features) == 1


def kmeans(features, k, seed, n_init):
    """(labels, centres) of k-means++ with ``random_state=seed``."""
    from sklearn.cluster import KMeans

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # duplicate points: fewer distinct clusters than k
        model = KMeans(n_clusters=k, init="k-means++", n_init=n_init, random_state=seed).fit(features)
    return model.labels_, model.cluster_centers_


def isometric_features(features):
    """Coordinates of the rows in the span of the centred data: every pairwise distance is kept.

    N points of dimension D (1300 x 16384 for an ImageNet class) span at most N - 1 dimensions,
    so LOF and k-means, which see only distances, give the same answer on N-dimensional
    coordinates at a fraction of the cost. Returns (coordinates, to_original) where
    ``to_original(c)`` maps points given in coordinates back to the original space.
    """
    mean = features.mean(0)
    centred = features - mean
    if features.shape[1] <= features.shape[0]:
        return centred, lambda c: c + mean
    centred_t = torch.from_numpy(centred)
    gram = (centred_t @ centred_t.T).numpy()
    values, vectors = np.linalg.eigh(gram)
    keep = values > values.max() * 1e-10
    values, vectors = values[keep], vectors[:, keep]
    coordinates = vectors * np.sqrt(values)
    weights = vectors / np.sqrt(values)  # N x r: original = (c @ weights.T) @ centred + mean
    return coordinates, lambda c: (c @ weights.T) @ centred + mean


def image_prototypes(latents, ipc, seed, contamination=0.1, n_neighbors=10, n_init=10):
    """Cluster one class's latents (N, C, H, W) into ``ipc`` prototypes.

    Returns ``(inliers, labels, centres, note)``: the LOF mask, a cluster label per image (-1 for
    outliers), the centres (ipc, C, H, W), and a note saying what was done when the class is too
    small for ``ipc`` clusters (otherwise None).
    """
    n = len(latents)
    features = latents.reshape(n, -1).double().numpy()
    note = None
    if n < ipc:
        # Too few images for distinct clusters: each image is its own prototype, reused in turn.
        note = f"only {n} images for IPC {ipc}: each image is a prototype, used {-(-ipc // n)} time(s) at most"
        centres = np.stack([features[i % n] for i in range(ipc)])
        return (
            np.ones(n, dtype=bool),
            np.arange(n),
            torch.from_numpy(centres).float().reshape(ipc, *latents.shape[1:]),
            note,
        )
    coordinates, to_original = isometric_features(features)
    inliers = inlier_mask(coordinates, contamination, n_neighbors)
    if inliers.sum() < ipc:
        note = f"{int(inliers.sum())} inliers for IPC {ipc}: outlier removal skipped, all {n} images clustered"
        inliers = np.ones(n, dtype=bool)
    labels = np.full(n, -1)
    cluster_labels, centres = kmeans(coordinates[inliers], ipc, seed, n_init)
    labels[inliers] = cluster_labels
    centres = to_original(centres)
    return inliers, labels, torch.from_numpy(centres).float().reshape(ipc, *latents.shape[1:]), note


def cluster_members(images, labels, ipc):
    """Image paths per cluster, in index order; for a class smaller than IPC, clusters reuse images in turn."""
    n_labels = labels.max() + 1 if len(labels) else 0
    members = [[img for img, lab in zip(images, labels) if lab == c] for c in range(n_labels)]
    return [members[c % n_labels] for c in range(ipc)] if n_labels < ipc else members


def clusters_record(images, labels, clustered, ipc, seed, note):
    """A class's clusters JSON: members per cluster, the images in no cluster (``clustered`` False), and
    what was done."""
    return {
        "members": cluster_members(images, labels, ipc),
        "outliers": [img for img, kept in zip(images, clustered) if not kept],
        "ipc": ipc,
        "seed": seed,
        "images": len(images),
        "inliers": int(clustered.sum()),
        "note": note,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latents", nargs="+", required=True, type=Path, help="per class: latents (safetensors)")
    parser.add_argument("--ipc", required=True, type=int)
    parser.add_argument("--seed", required=True, type=int)
    add_settings(parser, "cluster")
    parser.add_argument("--out", nargs="+", required=True, type=Path, help="per class: clusters JSON")
    parser.add_argument("--centres", nargs="+", required=True, type=Path, help="per class: centres safetensors")
    args = parser.parse_args(argv)
    for one in each_class(args, ("latents", "out", "centres")):
        cluster_class(one)


def cluster_class(args):
    tensors, images = contract.read_latents(args.latents)
    inliers, labels, centres, note = image_prototypes(
        tensors[contract.LATENTS], args.ipc, args.seed, args.contamination, args.lof_n_neighbors, args.n_init
    )
    clusters = clusters_record(images, labels, inliers, args.ipc, args.seed, note)
    if note:
        print(f"warning: {note}", file=sys.stderr)
    contract.write_clusters(args.out, args.centres, clusters, centres)
    provenance.record(args.out, "cluster", vars(args))
    sizes = [len(m) for m in clusters["members"]]
    print(f"{len(images)} images, {len(clusters['outliers'])} outliers, cluster sizes {sizes}", file=sys.stderr)


if __name__ == "__main__":
    run(main)

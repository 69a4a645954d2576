"""CPU prototype stages on one ImageNet-sized class: LOF + k-means and text prototypes.

1300 latents of 4x64x64 (SD v1.5 at 512 px) and 1300 captions of LLaVA length, at IPC 10
and 50, with the authors' settings (n_neighbors 10, contamination 0.1, n_init 10, beta 0.7,
top-k 30). Target: at most 5 s for clustering plus text prototypes of one class.

    python bench/prototypes.py [--images 1300]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vlcp.cluster import cluster_members, image_prototypes  # noqa: E402
from vlcp.text_prototype import class_text_prototypes  # noqa: E402
from vlcp.tiny_models import vocabulary  # noqa: E402

TARGET_S = 5.0


def synthetic_class(n, seed=0):
    """Latents drawn around 20 modes, and captions of 60-90 words from the tiny vocabulary."""
    rng = np.random.default_rng(seed)
    modes = rng.normal(0, 1, size=(20, 4 * 64 * 64)).astype(np.float32)
    latents = modes[rng.integers(0, 20, n)] + rng.normal(0, 0.8, size=(n, 4 * 64 * 64)).astype(np.float32)
    words = [w for w in vocabulary() if w.isalpha()]
    captions = {f"train/x/{i}.JPEG": " ".join(rng.choice(words, rng.integers(60, 90))) for i in range(n)}
    return torch.from_numpy(latents).reshape(n, 4, 64, 64), captions


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1300)
    args = parser.parse_args()
    latents, captions = synthetic_class(args.images)
    images = list(captions)
    print(f"{'IPC':>4} {'cluster s':>10} {'text s':>8} {'total s':>8} {'vs 5 s target':>14}")
    for ipc in (10, 50):
        start = time.perf_counter()
        inliers, labels, centres, _ = image_prototypes(
            latents, ipc, seed=0, contamination=0.1, n_neighbors=10, n_init=10
        )
        members = cluster_members(images, labels, ipc)
        clustered = time.perf_counter()
        kept = {img: captions[img] for img, keep in zip(images, inliers) if keep}
        class_text_prototypes(kept, members, "tench, Tinca tinca", beta=0.7, top_k=30)
        done = time.perf_counter()
        total = done - start
        print(f"{ipc:>4} {clustered - start:>10.2f} {done - clustered:>8.2f} {total:>8.2f} {total / TARGET_S:>13.2f}x")


if __name__ == "__main__":
    main()

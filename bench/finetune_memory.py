"""Fine-tuning's host memory against the size of the train set: peak RSS of the fine-tune job.

The job runs as at real scale, from per-class latents files of SD v1.5's shape at 512 px
(4 x 64 x 64 float32, with the mirrored copies), on the tiny U-Net for a few steps, over N
synthetic images at two sizes. Memory that grows with N shows as a ratio above 1; the target is
at most 1.3 for 4 times the images (it was about 4 when every latent was held in memory).

    python bench/finetune_memory.py [--sizes 10000 40000] [--classes 100] [--steps 3] [--keep DIR]

The last line prints both peaks and their ratio. VLCP_CODE=<checkout> measures the fine-tune of
another checkout (an earlier commit, say) on the same data. The latents take 2 x 64 KiB per image on disk
(5.2 GB at N = 40,000), written to a temporary folder and removed afterwards unless --keep.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from common import REPO

from vlcp import contract, tiny_models

LATENT_SHAPE = (4, 64, 64)


def write_train_set(folder, n, classes):
    """Index, captions and latents files of ``classes`` classes holding ``n`` images in all."""
    files = {"index": [], "captions": [], "latents": []}
    per_class = [n // classes + (k < n % classes) for k in range(classes)]
    generator = torch.Generator().manual_seed(n)
    for k, count in enumerate(per_class):
        cls = f"c{k:04d}"
        images = [f"train/{cls}/{i}.png" for i in range(count)]
        paths = {
            kind: folder / kind / f"{cls}{suffix}"
            for kind, suffix in (("index", ".jsonl"), ("captions", ".jsonl"), ("latents", ".safetensors"))
        }
        contract.write_index(
            paths["index"],
            [
                {"image": im, "class": cls, "label": f"class {k}", "width": 512, "height": 512, "mode": "RGB"}
                for im in images
            ],
        )
        contract.write_captions(
            paths["captions"],
            [
                {"image": im, "caption": f"a photo of the class {k} object number {i}, seen from the side"}
                for i, im in enumerate(images)
            ],
        )
        latents = torch.randn(count, *LATENT_SHAPE, generator=generator)
        contract.write_latents(
            paths["latents"], contract.latents_tensors(latents, train_flipped=latents.flip(-1)), images
        )
        for kind, path in paths.items():
            files[kind].append(path)
    return files


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs=2, type=int, default=[10_000, 40_000])
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the data here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="vlcp-ft-memory-"))
    try:
        model = root / "tiny-sd"
        if not model.exists():
            tiny_models.save_tiny_stable_diffusion(model, seed=0, resolution=64)
        peaks = []
        for n in args.sizes:
            folder = root / f"n{n}"
            if not folder.exists():
                print(f"writing {n} synthetic latents of shape {LATENT_SHAPE} in {args.classes} classes", flush=True)
                write_train_set(folder, n, args.classes)
            shutil.rmtree(folder / "run", ignore_errors=True)
            peaks.append(measure(folder, model, args.steps))
            print(f"N = {n}: peak RSS {peaks[-1]:.0f} MB", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    (n1, n2), (m1, m2) = args.sizes, peaks
    print(
        f"peak RSS of the fine-tune job: N={n1}: {m1:.0f} MB, N={n2}: {m2:.0f} MB, ratio {m2 / m1:.2f} (target <= 1.3)"
    )


def measure(folder, model, steps):
    """Peak resident memory (MB) of one fine-tune job over the train set in ``folder``, as the kernel accounts it."""
    files = {kind: sorted((folder / kind).iterdir()) for kind in ("index", "captions", "latents")}
    work = folder / "run"
    cmd = [
        sys.executable,
        "-m",
        "vlcp.finetune",
        "--model",
        str(model),
        "--index",
        *map(str, files["index"]),
        "--captions",
        *map(str, files["captions"]),
        "--latents",
        *map(str, files["latents"]),
        "--out",
        str(work / "out"),
        "--work",
        str(work / "ckpt"),
        "--resolution",
        "512",
        "--train-batch-size",
        "8",
        "--gradient-accumulation-steps",
        "1",
        "--mixed-precision",
        "no",
        "--no-gradient-checkpointing",
        "--max-train-steps",
        str(steps),
        "--checkpointing-steps",
        str(10**6),
    ]
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="2",
        PYTHONPATH=os.pathsep.join(
            filter(None, [os.environ.get("VLCP_CODE", str(REPO)), os.environ.get("PYTHONPATH")])
        ),
    )
    with open(work.parent / "finetune.log", "w") as log:
        process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("the fine-tune job failed:\n" + (work.parent / "finetune.log").read_text()[-3000:])
    return usage.ru_maxrss / 1024


if __name__ == "__main__":
    main()

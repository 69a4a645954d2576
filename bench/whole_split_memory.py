"""Peak host and device memory of a teacher run over a whole train split, for two split sizes.

Writes N synthetic images (10 classes, noise PNGs of --side px) and 10 val images per class, then runs
``python -m vlcp teacher`` (ConvNet-6, one epoch) on them in a process of its own, once with the split
decoded into memory (``--image-loading memory``, the baseline) and once read from disk batch by batch
(``stream``), and reads each process's peak resident memory from the kernel (``wait4``) and its peak GPU
memory from its log. Streamed, memory is that of a batch: the ratio of the peaks of the larger split to
the smaller one stays near 1 (target <= 1.3), while in memory it grows with the split.

    python bench/whole_split_memory.py                      # 10,000 and 40,000 images of 32 px
    python bench/whole_split_memory.py --images 2000 8000   # quicker
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import REPO, report
from PIL import Image

from vlcp import contract

CLASSES = [f"class{i}" for i in range(10)]


def write_split(root, split, per_class, side, seed):
    """``per_class`` noise images per class under root/split/<class>/ and their index file."""
    rng = np.random.default_rng(seed)
    records = []
    for cls in CLASSES:
        folder = root / split / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            name = folder / f"{i}.png"
            if not name.exists():
                Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(name, compress_level=0)
            records.append(
                {
                    "image": f"{split}/{cls}/{i}.png",
                    "class": cls,
                    "label": cls,
                    "width": side,
                    "height": side,
                    "mode": "RGB",
                }
            )
    index = root / f"{split}-{per_class}.jsonl"
    contract.write_index(index, records)
    return index


def teacher_run(root, train_index, val_index, side, loading, out):
    """Peak RSS (bytes) and peak GPU memory (GiB, None on the CPU) of one teacher run, and its seconds."""
    import time

    cmd = [
        sys.executable,
        "-m",
        "vlcp",
        "teacher",
        "--train-index",
        str(train_index),
        "--val-index",
        str(val_index),
        "--root",
        str(root),
        "--architecture",
        "convnet6",
        "--epochs",
        "1",
        "--seed",
        "0",
        "--test-every",
        "1",
        "--batch-size",
        "256",
        "--input-size",
        str(side),
        "--learning-rate",
        "0.01",
        "--weight-decay",
        "0.0005",
        "--image-loading",
        loading,
        "--out",
        str(out),
    ]
    log = out.with_suffix(".log")
    start = time.perf_counter()
    with log.open("w") as handle:
        process = subprocess.Popen(
            cmd, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"the teacher run failed ({loading}); its log:\n{log.read_text()[-3000:]}")
    gpu = re.search(r"peak GPU memory ([\d.]+) GiB", log.read_text())
    return usage.ru_maxrss * 1024, float(gpu.group(1)) if gpu else None, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", nargs=2, type=int, default=[10_000, 40_000], help="the two split sizes")
    parser.add_argument("--side", type=int, default=32, help="side of the images and of the teacher's input")
    parser.add_argument("--work", type=Path, help="folder for the images (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="vlcp-whole-split-"))
    val_index = write_split(work, "val", 10, args.side, seed=1)
    peaks = {}
    for count in args.images:
        train_index = write_split(work, "train", count // len(CLASSES), args.side, seed=0)
        for loading in ("memory", "stream"):
            peaks[loading, count] = teacher_run(
                work, train_index, val_index, args.side, loading, work / f"teacher-{loading}-{count}.safetensors"
            )
    small, large = args.images
    rows = []
    for (loading, count), (rss, gpu, seconds) in peaks.items():
        rows.append([loading, count, f"{rss / 2**20:.0f}", "-" if gpu is None else f"{gpu:.2f}", f"{seconds:.0f}"])
    report(rows, ["loading", "images", "peak host RSS (MiB)", "peak GPU (GiB)", "seconds"])
    for loading in ("memory", "stream"):
        host = peaks[loading, large][0] / peaks[loading, small][0]
        gpus = peaks[loading, large][1], peaks[loading, small][1]
        device = f", GPU {gpus[0] / gpus[1]:.2f}" if None not in gpus and gpus[1] > 0 else ""
        print(
            f"{loading}: ratio {large} / {small} images: host {host:.2f}{device}"
            f"{' (target <= 1.3)' if loading == 'stream' else ''}"
        )


if __name__ == "__main__":
    main()

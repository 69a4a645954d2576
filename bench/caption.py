"""Captioning: batched generation (left padding) vs the authors' batch-1 loop, in captions/s.

Every caption is forced to the same length (min_new_tokens = max_new_tokens), so both sides
generate the same number of tokens. ``--full`` uses LLaVA-1.5-7B's architecture with random
weights (GPU); the default is the tiny model. Target: at least 10x on a GPU.

    python bench/caption.py [--full] [--images 64] [--batch 32] [--tokens 64]
"""

import argparse

import numpy as np
import torch
from common import device, llava, report, timed
from PIL import Image

from vlcp.caption import build_prompt, caption_batch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    on = device()
    dtype = torch.bfloat16 if on.type == "cuda" else torch.float32
    model, processor = llava(args.full, on, dtype)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)) for _ in range(args.images)]
    prompt = build_prompt(processor, "Describe the physical appearance of the {label} in the image.", "tench")
    generation = {"max_new_tokens": args.tokens, "min_new_tokens": args.tokens, "do_sample": False}

    def loop():
        for img in images:
            caption_batch(model, processor, [img], prompt, generation)

    def batched():
        for s in range(0, len(images), args.batch):
            caption_batch(model, processor, images[s : s + args.batch], prompt, generation)

    base = timed(loop, on)
    ours = timed(batched, on)
    print(
        f"device: {on}, model: {'LLaVA-1.5-7B shape' if args.full else 'tiny'}, "
        f"{args.images} images, {args.tokens} tokens each"
    )
    report(
        [(f"{args.images / base:.2f}", f"{args.images / ours:.2f}", f"{base / ours:.2f}x")],
        ("batch-1 captions/s", f"batch-{args.batch} captions/s", "speed-up"),
    )


if __name__ == "__main__":
    main()

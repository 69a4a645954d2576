"""Synthesis: batched img2img from latent centres vs the authors' one-image loop, in images/s.

Both generate the same images (seeded per image, same prompts); ``--full`` uses SD v1.5's
architecture with random weights at 512 px (GPU), the default the tiny pipeline.
Target: at least 5x on a GPU.

    python bench/synthesize.py [--full] [--images 20] [--batch 10] [--steps 50]
"""

import argparse

import torch
from common import device, report, stable_diffusion, timed

from vlcp.synthesize import image_seed, synthesize


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    on = device()
    dtype = torch.float16 if on.type == "cuda" else torch.float32
    pipe = stable_diffusion(args.full, on, dtype)
    side = 64 if args.full else 8
    centres = torch.randn(args.images, 4, side, side, generator=torch.Generator().manual_seed(0))
    prompts = [f"a tench, a large fish held by a man, photo number {k}" for k in range(args.images)]
    seeds = [image_seed("tench", k, 0) for k in range(args.images)]
    kwargs = dict(
        negative_prompt="cartoon, anime, painting",
        strength=0.7,
        guidance_scale=10.0,
        num_inference_steps=args.steps,
        prompt_encoding="authors",
    )
    base = timed(lambda: synthesize(pipe, centres, prompts, seeds, {**kwargs, "batch_size": 1}), on)
    ours = timed(lambda: synthesize(pipe, centres, prompts, seeds, {**kwargs, "batch_size": args.batch}), on)
    print(
        f"device: {on}, model: {'SD v1.5 shape, 512 px' if args.full else 'tiny'}, "
        f"{args.images} images, {args.steps} steps x 0.7"
    )
    report(
        [(f"{args.images / base:.3f}", f"{args.images / ours:.3f}", f"{base / ours:.2f}x")],
        ("one-by-one images/s", f"batch-{args.batch} images/s", "speed-up"),
    )


if __name__ == "__main__":
    main()

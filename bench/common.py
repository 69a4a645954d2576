"""Shared helpers of the benchmarks: device choice, a timer, and the model builders (tiny or full size)."""

import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync(on):
    if on.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, on, repeats=1, warmup=True):
    """Best wall time of ``repeats`` calls of ``fn`` (after one warm-up call, unless ``warmup`` is False)."""
    if warmup:
        fn()
        sync(on)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(on)
        best = min(best, time.perf_counter() - start)
    return best


def report(rows, header):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))


def stable_diffusion(full, on, dtype):
    """An img2img pipeline: the tiny one, or SD v1.5's architecture with random weights (``full``)."""
    from diffusers import StableDiffusionImg2ImgPipeline

    from vlcp import full_models, tiny_models

    base = (
        full_models.build_stable_diffusion() if full else tiny_models.build_tiny_stable_diffusion(seed=0, resolution=64)
    )
    pipe = StableDiffusionImg2ImgPipeline(**base.components).to(on, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def llava(full, on, dtype):
    """(model, processor): the tiny LLaVA, or LLaVA-1.5-7B's architecture with random weights (``full``)."""
    from vlcp import full_models, tiny_models

    model, processor = full_models.build_llava(on, dtype) if full else tiny_models.build_tiny_llava(seed=0)
    return model.to(on, dtype).eval(), processor

"""Shared helpers of the benchmarks: device choice, a timer, and the model builders (tiny or full size)."""

import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CONFIGS = Path(__file__).parent / "configs"


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


def load_config(name):
    return json.loads((CONFIGS / name).read_text())


def report(rows, header):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))


def stable_diffusion(full, on, dtype):
    """An img2img pipeline: the tiny one, or SD v1.5's architecture with random weights (``full``)."""
    from diffusers import (
        AutoencoderKL,
        StableDiffusionImg2ImgPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from vlcp import tiny_models

    tiny = tiny_models.build_tiny_stable_diffusion(seed=0, resolution=64)
    if full:
        spec = load_config("stable-diffusion-v1-5.json")
        tiny.unet = UNet2DConditionModel(**spec["unet"])
        tiny.vae = AutoencoderKL(**spec["vae"])
        text = CLIPTextConfig(**spec["text_encoder"])
        text.vocab_size = max(text.vocab_size, len(tiny.tokenizer))
        tiny.text_encoder = CLIPTextModel(text)
    pipe = StableDiffusionImg2ImgPipeline(**tiny.components).to(on, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def llava(full, on, dtype):
    """(model, processor): the tiny LLaVA, or LLaVA-1.5-7B's architecture with random weights (``full``)."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    from vlcp import tiny_models

    model, processor = tiny_models.build_tiny_llava(seed=0)
    if full:
        spec = load_config("llava-1.5-7b.json")
        text = LlamaConfig(**{**spec["text_config"], "vocab_size": max(spec["text_config"]["vocab_size"], len(processor.tokenizer))})
        config = LlavaConfig(
            vision_config=CLIPVisionConfig(**spec["vision_config"]), text_config=text,
            image_token_index=processor.tokenizer.convert_tokens_to_ids("<image>"),
            vision_feature_layer=spec["vision_feature_layer"],
            vision_feature_select_strategy=spec["vision_feature_select_strategy"],
            projector_hidden_act=spec["projector_hidden_act"],
        )
        generation = model.generation_config
        with torch.device(on):
            model = LlavaForConditionalGeneration(config).to(dtype)
        model.generation_config = generation
        size = spec["vision_config"]["image_size"]
        processor.image_processor.size = {"shortest_edge": size}
        processor.image_processor.crop_size = {"height": size, "width": size}
        processor.patch_size = spec["vision_config"]["patch_size"]
    return model.to(on, dtype).eval(), processor

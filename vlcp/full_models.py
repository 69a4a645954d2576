"""Stable Diffusion v1.5 and LLaVA-1.5-7B at full size with random weights, from their published configs.

The architectures of stable-diffusion-v1-5 and llava-hf/llava-1.5-7b-hf (``vlcp/data/configs``),
with the tiny models' tokenizers, since no vocabulary can be downloaded here. They are what the
GPU suite trains and runs, what the benchmarks time with ``--full``, and, built on the ``meta``
device, what the sizing table counts.
"""

import json
from importlib import resources

import torch

from vlcp import tiny_models


def spec(name):
    """The architecture config ``stable-diffusion-v1-5`` or ``llava-1.5-7b`` as a dict."""
    return json.loads(resources.files("vlcp.data").joinpath(f"configs/{name}.json").read_text())


def build_stable_diffusion(on="cpu"):
    """A ``StableDiffusionPipeline`` of SD v1.5's U-Net, VAE and text encoder (random float32 weights)
    with the tiny pipeline's tokenizer and scheduler settings."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    sd = spec("stable-diffusion-v1-5")
    tiny = tiny_models.build_tiny_stable_diffusion(seed=0, resolution=64)
    text = CLIPTextConfig(**sd["text_encoder"])
    text.vocab_size = max(text.vocab_size, len(tiny.tokenizer))
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(text, key, getattr(tiny.text_encoder.config, key))
    with torch.device(on):
        components = {
            **tiny.components,
            "unet": UNet2DConditionModel(**sd["unet"]),
            "vae": AutoencoderKL(**sd["vae"]),
            "text_encoder": CLIPTextModel(text),
        }
    return StableDiffusionPipeline(**components)


def llava_config(tokenizer, text_layers=None):
    """LLaVA-1.5-7B's ``LlavaConfig`` for ``tokenizer``; ``text_layers`` shrinks only the language model's depth."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    lv = spec("llava-1.5-7b")
    text = {**lv["text_config"], "vocab_size": max(lv["text_config"]["vocab_size"], len(tokenizer))}
    if text_layers:
        text["num_hidden_layers"] = text_layers
    return LlavaConfig(
        vision_config=CLIPVisionConfig(**lv["vision_config"]),
        text_config=LlamaConfig(
            **text,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=lv["vision_feature_layer"],
        vision_feature_select_strategy=lv["vision_feature_select_strategy"],
        projector_hidden_act=lv["projector_hidden_act"],
        pad_token_id=tokenizer.pad_token_id,
    )


def build_llava(on="cpu", dtype=torch.float32, text_layers=None):
    """(model, processor): LLaVA-1.5-7B's architecture, initialised on ``on`` in ``dtype``, with the
    real processor settings (336 px, patch 14) around the tiny tokenizer and generation config."""
    from transformers import LlavaForConditionalGeneration

    tiny, processor = tiny_models.build_tiny_llava(seed=0)
    config = llava_config(processor.tokenizer, text_layers)
    with torch.device(on):
        model = LlavaForConditionalGeneration._from_config(config, dtype=dtype)  # initialised in dtype: 14 GB, not 28
    model.generation_config = tiny.generation_config
    # The real vocabulary is larger than the tiny tokenizer's; ids past it would decode to nothing.
    extra = range(len(processor.tokenizer), config.text_config.vocab_size)
    model.generation_config.suppress_tokens = [*model.generation_config.suppress_tokens, *extra]
    size = config.vision_config.image_size
    processor.image_processor.size = {"shortest_edge": size}
    processor.image_processor.crop_size = {"height": size, "width": size}
    processor.patch_size = config.vision_config.patch_size
    return model.eval(), processor


def parameter_counts():
    """Parameters of each full-size model part, counted on the ``meta`` device (no memory used)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, LlavaForConditionalGeneration

    sd = spec("stable-diffusion-v1-5")
    tokenizer = tiny_models.build_tiny_llava_tokenizer(tiny_models.vocabulary())
    with torch.device("meta"):
        parts = {
            "unet": UNet2DConditionModel(**sd["unet"]),
            "vae": AutoencoderKL(**sd["vae"]),
            "sd_text_encoder": CLIPTextModel(CLIPTextConfig(**sd["text_encoder"])),
            "llava": LlavaForConditionalGeneration(llava_config(tokenizer)),
        }
    counts = {name: sum(p.numel() for p in model.parameters()) for name, model in parts.items()}
    counts["vae_encoder"] = sum(p.numel() for p in parts["vae"].encoder.parameters()) + sum(
        p.numel() for p in parts["vae"].quant_conv.parameters()
    )
    return counts

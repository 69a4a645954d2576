"""The tiny models save in the Hugging Face layout and load through the real checkpoints' code path."""

import numpy as np
import pytest
import torch
from PIL import Image

from vlcp import tiny_models


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    tiny_models.save_tiny_stable_diffusion(root / "sd", seed=0, resolution=64)
    tiny_models.save_tiny_llava(root / "llava", seed=0)
    return root


def test_stable_diffusion_layout_and_forward(saved):
    from diffusers import StableDiffusionPipeline

    folder = saved / "sd"
    for part in ("unet", "vae", "text_encoder"):
        assert list((folder / part).glob("*.safetensors")), f"{part} weights are not safetensors"
    assert (folder / "model_index.json").is_file() and (folder / "tokenizer").is_dir()
    pipe = StableDiffusionPipeline.from_pretrained(folder, use_safetensors=True)
    assert pipe.vae.config.latent_channels == 4
    assert pipe.tokenizer.model_max_length == 77
    latents = pipe.vae.encode(torch.rand(2, 3, 64, 64) * 2 - 1).latent_dist.mean
    assert latents.shape == (2, 4, 8, 8), "the VAE must downsample 8x to 4 channels like SD v1.5"
    ids = pipe.tokenizer(["a dog with long ears"], padding="max_length", truncation=True, return_tensors="pt").input_ids
    assert ids.shape == (1, 77) and (ids != pipe.tokenizer.pad_token_id).sum() > 2
    text = pipe.text_encoder(ids)[0]
    noise = pipe.unet(latents[:1], 10, encoder_hidden_states=text).sample
    assert noise.shape == (1, 4, 8, 8) and torch.isfinite(noise).all()
    image = pipe("a dog", num_inference_steps=2, height=64, width=64, output_type="np").images
    assert image.shape == (1, 64, 64, 3)


def test_clip_tokenizer_makes_known_words_single_tokens():
    vocab, merges = tiny_models.clip_bpe_vocabulary(["dog", "hound"])
    assert "dog</w>" in vocab and "hound</w>" in vocab
    assert len(set(vocab.values())) == len(vocab)
    assert all(a + b in vocab for a, b in merges)


def test_llava_generates_real_words_in_batches(saved):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    folder = saved / "llava"
    assert list(folder.glob("*.safetensors"))
    model = LlavaForConditionalGeneration.from_pretrained(folder, use_safetensors=True)
    processor = AutoProcessor.from_pretrained(folder)
    assert processor.tokenizer.padding_side == "left"
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the dog."}]}]
    prompt = processor.apply_chat_template(conversation, add_generation_prompt=True)
    assert prompt == "USER: <image>\nDescribe the dog. ASSISTANT:"
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)) for _ in range(3)]
    inputs = processor(images=images, text=[prompt] * 3, return_tensors="pt", padding=True)
    image_tokens = (inputs["input_ids"] == model.config.image_token_index).sum(dim=1)
    assert image_tokens.tolist() == [16, 16, 16]
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    captions = processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    words = set(tiny_models.vocabulary())
    for caption in captions:
        tokens = caption.split()
        assert len(tokens) == 8 and set(tokens) <= words, caption
    assert len(set(captions)) > 1, "different images should give different captions"


def test_same_seed_same_weights(tmp_path):
    a, _ = tiny_models.build_tiny_llava(seed=3)
    b, _ = tiny_models.build_tiny_llava(seed=3)
    c, _ = tiny_models.build_tiny_llava(seed=4)
    pa, pb, pc = (next(m.parameters()) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)

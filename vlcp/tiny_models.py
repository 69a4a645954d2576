"""Tiny models shaped like Stable Diffusion v1.5 and LLaVA-1.5.

They are built offline from a seed and saved with ``save_pretrained``, so every
stage loads them through the same ``from_pretrained`` call that loads the real
checkpoints. They make the whole workflow runnable on a CPU in minutes. Their
weights are random, except, on request, the tiny Stable Diffusion's VAE and
U-Net, which carry the weights pretrained on the demo's digits
(``vlcp.tiny_pretrain``), so that its images are digits; the captioner's words
mean nothing, but its shapes, file layout and APIs are the real ones.
"""

import argparse
from importlib import resources
from pathlib import Path

import torch

from vlcp.atomic import atomic_dir
from vlcp.cli import run

# SD v1.5 conventions kept by the tiny pipeline: 8x VAE downsampling, 4 latent
# channels, the same latent scaling factor, a 77-token CLIP text encoder.
SD_LATENT_CHANNELS = 4
SD_SCALING_FACTOR = 0.18215
CLIP_MAX_LENGTH = 77
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>\n{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'user' %} {% else %}</s>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def vocabulary():
    """The English words of the tiny models' vocabularies, in file order, without repeats."""
    text = resources.files("vlcp.data").joinpath("tiny_vocab.txt").read_text()
    words = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        words.extend(w for w in line.split() if w not in words)
    return words


def byte_alphabet():
    """Byte-level BPE's reversible map from the 256 byte values to printable characters (transformers'
    ``bytes_to_unicode``), in byte order."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return dict(sorted(bytes_to_unicode().items()))


def clip_bpe_vocabulary(words):
    """The ``vocab`` and ``merges`` of a byte-level BPE in CLIP's format.

    The base alphabet is every byte, alone and word-final (``</w>``); one merge chain per
    word builds it left to right, so each listed word becomes a single token.
    """
    alphabet = list(byte_alphabet().values())
    tokens = alphabet + [c + "</w>" for c in alphabet]
    merges = []
    known = set(tokens)
    for word in words:
        if not word.isalpha():
            continue
        prefix = word[0]
        for i, char in enumerate(word[1:], start=1):
            right = char + "</w>" if i == len(word) - 1 else char
            merged = prefix + right
            if merged not in known:
                merges.append((prefix, right))
                tokens.append(merged)
                known.add(merged)
            prefix = merged
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(tokens)}, merges


def build_tiny_stable_diffusion(seed, resolution=64, pretrained=False):
    """A StableDiffusionPipeline with SD v1.5's structure at about a million parameters; ``pretrained``
    puts the shipped digit weights (True), or those of a ``tiny_pretrain`` folder (a path), into its VAE
    and U-Net (``vlcp.tiny_pretrain``)."""
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if resolution % 8:
        raise ValueError(f"tiny Stable Diffusion resolution must be a multiple of 8, got {resolution}")
    torch.manual_seed(seed)
    vocab, merges = clip_bpe_vocabulary(vocabulary())
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CLIP_MAX_LENGTH)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=CLIP_MAX_LENGTH,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 32, 32, 32),
        layers_per_block=1,
        latent_channels=SD_LATENT_CHANNELS,
        norm_num_groups=16,
        sample_size=resolution,
        scaling_factor=SD_SCALING_FACTOR,
    )
    unet = UNet2DConditionModel(
        sample_size=resolution // 8,
        in_channels=SD_LATENT_CHANNELS,
        out_channels=SD_LATENT_CHANNELS,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        skip_prk_steps=True,
        steps_offset=1,
        set_alpha_to_one=False,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if pretrained:
        from vlcp.tiny_pretrain import load_pretrained

        load_pretrained(pipe, None if pretrained is True else pretrained)
    return pipe


def build_tiny_llava_tokenizer(words, image_token=True):
    """A word-level fast tokenizer with LLaVA's special tokens and ``<image>`` placeholder (or without it,
    for the tiny text generator)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"] + (["<image>"] if image_token else [])
    vocab = {tok: i for i, tok in enumerate(specials + words)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", vocab["<s>"])]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"} if image_token else {},
        padding_side="left",
        model_max_length=2048,
    )
    return tokenizer


def distinct_words(tokenizer, suppressed, **settings):
    """The generation config of a tiny model: random weights repeat one word forever under greedy
    decoding; forbidding repeats and the special tokens makes the text a run of distinct real words, as
    a real model's is."""
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        no_repeat_ngram_size=1,
        suppress_tokens=[tokenizer.convert_tokens_to_ids(t) for t in suppressed],
        **settings,
    )


def build_tiny_llava(seed, image_size=32, patch_size=8):
    """A LlavaForConditionalGeneration and LlavaProcessor shaped like llava-1.5 (CLIP tower, Llama LM)."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    torch.manual_seed(seed)
    tokenizer = build_tiny_llava_tokenizer(vocabulary())
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=image_size,
            patch_size=patch_size,
            projection_dim=32,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=512,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            initializer_range=0.2,
        ),
        image_token_index=image_token_id,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config = distinct_words(tokenizer, ("<unk>", "<s>", "<pad>", "<image>"), max_new_tokens=24)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT_TEMPLATE,
    )
    return model, processor


def build_tiny_gpt(seed):
    """A GPT2LMHeadModel and word-level tokenizer, the shape of GPT-2 shrunk: the text generator of the
    GPT-generated-sentences strategy in tests and the demo."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    tokenizer = build_tiny_llava_tokenizer(vocabulary(), image_token=False)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=256,
        n_embd=64,
        n_layer=2,
        n_head=4,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config).eval()
    model.generation_config = distinct_words(tokenizer, ("<unk>", "<s>", "<pad>"))
    return model, tokenizer


def save_tiny_gpt(out_dir, seed):
    with atomic_dir(out_dir) as tmp:
        model, tokenizer = build_tiny_gpt(seed)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)


def save_tiny_stable_diffusion(out_dir, seed, resolution, pretrained=False):
    with atomic_dir(out_dir) as tmp:
        build_tiny_stable_diffusion(seed, resolution, pretrained).save_pretrained(tmp, safe_serialization=True)


def save_tiny_llava(out_dir, seed):
    with atomic_dir(out_dir) as tmp:
        model, processor = build_tiny_llava(seed)
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["stable-diffusion", "llava", "gpt"])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resolution", type=int, default=64, help="image size of the tiny Stable Diffusion")
    parser.add_argument(
        "--pretrained", action="store_true", help="the tiny Stable Diffusion's VAE and U-Net pretrained on digits"
    )
    parser.add_argument("--weights", type=Path, help="a tiny_pretrain folder: its VAE and U-Net weights instead")
    args = parser.parse_args(argv)
    if args.kind == "stable-diffusion":
        save_tiny_stable_diffusion(args.out_dir, args.seed, args.resolution, args.weights or args.pretrained)
    elif args.kind == "llava":
        save_tiny_llava(args.out_dir, args.seed)
    else:
        save_tiny_gpt(args.out_dir, args.seed)


if __name__ == "__main__":
    run(main)

"""Stable Diffusion v1.5 and LLaVA-1.5-7B at full size with random weights, from their published configs.

The architectures of stable-diffusion-v1-5 and llava-hf/llava-1.5-7b-hf (``vlcp/data/configs``),
with the tiny models' tokenizers, since no vocabulary can be downloaded here. They are what the
GPU suite trains and runs, what the benchmarks time with ``--full``, and, built on the ``meta``
device, what the sizing table counts.

``save_stable_diffusion_hub`` and ``save_llava_hub`` write them as those two hub repositories lay
their files out: the repositories' own small files (``vlcp/data/hub/<repo>/``: model_index.json
naming the safety checker and feature extractor, the configs as the hub has them, the processor,
preprocessor, chat template, generation and tokenizer settings), the weights in the same file names
(plain and ``.fp16`` for Stable Diffusion; LLaVA's float16 shards with their index), and a made-up
vocabulary of the real size with the real special-token ids. A stage that loads such a folder goes
through the code a user's download goes through.
"""

import json
from importlib import resources
from pathlib import Path

import torch

from vlcp import tiny_models
from vlcp.atomic import atomic_dir

SD_REPO = "stable-diffusion-v1-5"
LLAVA_REPO = "llava-1.5-7b-hf"


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


# --- the hub repositories' file layouts ----------------------------------------------------------


def hub_files(repo):
    """{relative path: text} of the small files shipped for hub repository ``repo`` (SD_REPO, LLAVA_REPO)."""
    root = resources.files("vlcp.data").joinpath("hub", repo)
    found = {}

    def walk(folder, prefix):
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            else:
                found[f"{prefix}{entry.name}"] = entry.read_text()

    walk(root, "")
    return dict(sorted(found.items()))


def hub_json(repo, path):
    return json.loads(hub_files(repo)[path])


def write_hub_files(repo, folder, changes=None):
    """Write ``repo``'s small files into ``folder`` as the hub has them; ``changes`` maps a path to a dict
    of keys to set in that JSON file first (LLaVA's language-model depth)."""
    for path, text in hub_files(repo).items():
        if path in (changes or {}):
            data = json.loads(text)
            for key, value in changes[path].items():
                node = data
                *parents, last = key.split(".")
                for name in parents:
                    node = node[name]
                node[last] = value
            text = json.dumps(data, indent=2) + "\n"
        target = Path(folder) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def padded_clip_vocabulary(size):
    """The tiny models' CLIP BPE vocabulary and merges with unreachable filler entries up to ``size``, so
    that <|startoftext|> and <|endoftext|> have CLIP's ids (size - 2, size - 1)."""
    vocab, merges = tiny_models.clip_bpe_vocabulary(tiny_models.vocabulary())
    specials = ("<|startoftext|>", "<|endoftext|>")
    tokens = [t for t in vocab if t not in specials]
    tokens += [f"<filler{i}>" for i in range(size - len(specials) - len(tokens))]
    return {t: i for i, t in enumerate([*tokens, *specials])}, merges


def build_safety_checker():
    """SD v1.5's safety checker (a CLIP ViT-L/14 vision tower and its projection) from the hub's config,
    random weights, on the default device."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig

    return StableDiffusionSafetyChecker(CLIPConfig(**hub_json(SD_REPO, "safety_checker/config.json")))


def save_stable_diffusion_hub(folder, seed=0, on="cpu"):
    """SD v1.5's U-Net, VAE, text encoder and safety checker with random weights, saved as the
    stable-diffusion-v1-5 repository holds them: every component's weights as ``*.safetensors`` and
    ``*.fp16.safetensors``, the hub's config files, and a CLIP-format tokenizer of the real vocabulary
    size. The weights are drawn on device ``on`` (a GPU draws them faster). Returns ``folder``."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    def config(path):
        return {k: v for k, v in hub_json(SD_REPO, path).items() if not k.startswith("_")}

    with atomic_dir(folder) as tmp:
        torch.manual_seed(seed)
        text = hub_json(SD_REPO, "text_encoder/config.json")
        parts = {
            "unet": lambda: UNet2DConditionModel(**config("unet/config.json")),
            "vae": lambda: AutoencoderKL(**config("vae/config.json")),
            "text_encoder": lambda: CLIPTextModel(CLIPTextConfig(**text)),
            "safety_checker": build_safety_checker,
        }
        for name, build in parts.items():  # one component in memory at a time
            with torch.device(on):
                model = build()
            model.save_pretrained(tmp / name, safe_serialization=True)
            model.half().save_pretrained(tmp / name, safe_serialization=True, variant="fp16")
            del model
        vocab, merges = padded_clip_vocabulary(text["vocab_size"])
        (tmp / "tokenizer").mkdir()
        (tmp / "tokenizer" / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        (tmp / "tokenizer" / "merges.txt").write_text(
            "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8"
        )
        write_hub_files(SD_REPO, tmp)
    return Path(folder)


def llama_like_tokenizer(size=32000):
    """A word-level tokenizer with LLaMA's ids for <unk>, <s>, </s> (0, 1, 2), the tiny models' words,
    filler words up to ``size``, then llava-hf's added <image> and <pad> (``size``, ``size`` + 1)."""
    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = tiny_models.vocabulary()
    specials = ["<unk>", "<s>", "</s>"]
    words += [f"w{i}" for i in range(size - len(specials) - len(words))]
    vocab = {tok: i for i, tok in enumerate(specials + words)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    backend.add_special_tokens([AddedToken(t, normalized=False) for t in ("<unk>", "<s>", "</s>", "<image>", "<pad>")])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
        padding_side="left",
    )


def save_llava_hub(folder, text_layers=2, seed=0, on="cpu"):
    """LLaVA-1.5-7B (CLIP ViT-L/14-336 tower, projector, Vicuna-7B's embeddings and head) with random
    float16 weights and the language model cut to ``text_layers`` layers (None: all 32), saved as
    llava-hf/llava-1.5-7b-hf holds it: float16 shards ``model-0000k-of-0000n.safetensors`` with their
    index, and the repository's config (with ``text_config.num_hidden_layers`` set), processor,
    preprocessor, chat template, generation and tokenizer files. The weights are drawn on device ``on``.
    Returns ``folder``."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    changes = {"config.json": {"text_config.num_hidden_layers": text_layers}} if text_layers else {}
    with atomic_dir(folder) as tmp:
        write_hub_files(LLAVA_REPO, tmp, changes)
        config = LlavaConfig.from_pretrained(tmp)
        torch.manual_seed(seed)
        with torch.device(on):
            model = LlavaForConditionalGeneration._from_config(config, dtype=torch.float16)
        model.save_pretrained(tmp, safe_serialization=True, max_shard_size="1GB")
        del model
        tokenizer = llama_like_tokenizer(hub_json(LLAVA_REPO, "added_tokens.json")["<image>"])
        tokenizer.save_pretrained(tmp)
        write_hub_files(LLAVA_REPO, tmp, changes)  # the hub's files, over what save_pretrained wrote
    return Path(folder)


def hub_models(root, llava_layers=None, on="cpu"):
    """(SD v1.5 folder, LLaVA folder) under ``root``, saved by ``save_stable_diffusion_hub`` and
    ``save_llava_hub`` unless already there (a folder appears only once complete), so that runs share
    them; ``llava_layers`` cuts the language model (None: all 32); ``on`` draws the weights there."""
    root = Path(root)
    sd = root / SD_REPO
    llava = root / (LLAVA_REPO if not llava_layers else f"{LLAVA_REPO}-{llava_layers}-layers")
    if not sd.is_dir():
        save_stable_diffusion_hub(sd, on=on)
    if not llava.is_dir():
        save_llava_hub(llava, text_layers=llava_layers, on=on)
    return sd, llava

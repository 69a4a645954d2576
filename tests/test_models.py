"""Model loading: the precision a device computes in, and weight files of one variant."""

import pytest
import torch

from vlcp import models, tiny_models


def test_auto_dtype_uses_float16_where_bfloat16_is_only_emulated(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert models.dtype_for("auto", cuda) == torch.float16, "V100/T4: bfloat16 emulated"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert models.dtype_for("auto", cuda) == torch.bfloat16, "A100/H100: native"
    assert models.dtype_for("auto", cuda, auto_bf16=False) == torch.float16, "Stable Diffusion: the authors' float16"
    assert models.dtype_for("bfloat16", torch.device("cpu")) == torch.float32


@pytest.fixture(scope="module")
def fp16_only_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    tiny_models.build_tiny_stable_diffusion(seed=0, resolution=32).save_pretrained(root / "sd", variant="fp16")
    model, processor = tiny_models.build_tiny_llava(seed=0)
    model.save_pretrained(root / "llava", variant="fp16")
    processor.save_pretrained(root / "llava")
    return root


def test_a_folder_of_only_fp16_weights_loads(fp16_only_models):
    sd, llava = fp16_only_models / "sd", fp16_only_models / "llava"
    weights = sorted(p.name for p in sd.rglob("*.safetensors"))
    assert weights and all(".fp16." in name for name in weights), weights
    assert models.weights_variant(str(sd)) == "fp16" and models.weights_variant(str(llava)) == "fp16"
    pipe = models.load_stable_diffusion(str(sd))
    reference = tiny_models.build_tiny_stable_diffusion(seed=0, resolution=32)
    assert torch.equal(next(pipe.unet.parameters()), next(reference.unet.parameters()))
    assert models.load_vae(str(sd)).config.latent_channels == 4
    model, processor = models.load_captioner(str(llava))
    assert processor.tokenizer.padding_side == "left" and model.config.model_type == "llava"
    assert models.load_stable_diffusion(str(sd), variant="fp16").unet is not None, "named explicitly"


def test_a_folder_of_plain_weights_loads_them(tmp_path):
    tiny_models.save_tiny_stable_diffusion(tmp_path / "sd", seed=0, resolution=32)
    assert models.weights_variant(str(tmp_path / "sd")) is None
    assert (
        models.weights_variant("someone/hub-id") is None and models.weights_variant("someone/hub-id", "fp16") == "fp16"
    )
    with pytest.raises(models.ModelNotFoundError, match="models.diffusion"):
        models.load_stable_diffusion(str(tmp_path / "sd"), variant="fp16")


@pytest.fixture(scope="module")
def old_llava(tmp_path_factory):
    """A tiny LLaVA saved as an older llava-hf download: processor_config.json names only the processor
    class and the image token (no patch_size, vision_feature_select_strategy, num_additional_image_tokens)."""
    import json

    folder = tmp_path_factory.mktemp("old-llava") / "llava"
    tiny_models.save_tiny_llava(folder, seed=0)
    saved = json.loads((folder / "processor_config.json").read_text())
    # the image processor's settings in preprocessor_config.json, as llava-hf's repository has them
    (folder / "preprocessor_config.json").write_text(json.dumps(saved["image_processor"]))
    (folder / "processor_config.json").write_text(
        json.dumps({"image_token": "<image>", "processor_class": "LlavaProcessor"})
    )
    return folder


def test_an_older_llava_processor_without_patch_size_captions(old_llava, capsys):
    """transformers' LlavaProcessor fails at the first batch without patch_size (a TypeError, after the whole
    model is loaded); the values come from the model's config.json instead, and a batch is captioned."""
    from PIL import Image

    from vlcp.caption import build_prompt, caption_batch

    model, processor = models.load_captioner(str(old_llava))
    assert "processor_config.json has no patch_size; using the vision tower's (8)" in capsys.readouterr().err
    assert (processor.patch_size, processor.vision_feature_select_strategy) == (8, "default")
    assert processor.num_additional_image_tokens == 1, "CLIP's tower adds a CLS token"
    prompt = build_prompt(processor, "Describe the {label}.", "three")
    images = [Image.new("RGB", (32, 32), (255, 255, 255)), Image.new("RGB", (32, 32), (0, 0, 0))]
    captions = caption_batch(model, processor, images, prompt, {"max_new_tokens": 4, "do_sample": False})
    assert len(captions) == 2 and all(captions)


def test_the_captioner_is_read_straight_onto_its_device(tmp_path, monkeypatch):
    """No host copy of a 14 GB model before it moves: from_pretrained places the weights (device_map)."""
    from transformers import AutoModelForImageTextToText

    from vlcp import caption

    tiny_models.save_tiny_llava(tmp_path / "llava", seed=0)
    asked = []
    original = AutoModelForImageTextToText.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        asked.append(kwargs.get("device_map"))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(AutoModelForImageTextToText, "from_pretrained", classmethod(spy))
    model, _ = models.load_captioner(str(tmp_path / "llava"), on=torch.device("cpu"))
    assert asked == ["cpu"] and model.device.type == "cpu"
    # the stage asks for its device when it loads, and moves nothing afterwards
    records = [{"image": "a.png", "class": "three", "label": "three", "width": 8, "height": 8, "mode": "RGB"}]
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    settings = {"root": tmp_path, "model": str(tmp_path / "llava"), "prompt": "Describe the {label}.",
                "batch_size": 1, "max_new_tokens": 2, "do_sample": False, "temperature": 0.2, "seed": 0,
                "dtype": "float16", "conversation": "llava_v1", "pad_to_square": True}  # fmt: skip
    caption.caption_class(records, settings, tmp_path / "work", tmp_path / "out.jsonl")
    assert asked == ["cpu", "cpu"]


def test_a_hub_id_cached_with_only_fp16_files_loads_with_its_variant(tmp_path, monkeypatch):
    """models.diffusion_variant: fp16 for a hub id whose offline cache holds only the fp16 files (what D4M's
    synthesis, which loads the base model, must honour as the fine-tune and encode do)."""
    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--tiny-sd" / "snapshots" / "0123456789abcdef"
    tiny_models.build_tiny_stable_diffusion(seed=0, resolution=32).save_pretrained(snapshot, variant="fp16")
    (cache / "models--someone--tiny-sd" / "refs").mkdir()
    (cache / "models--someone--tiny-sd" / "refs" / "main").write_text("0123456789abcdef")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(models.ModelNotFoundError, match="someone/tiny-sd"):
        models.load_stable_diffusion("someone/tiny-sd")
    pipe = models.load_stable_diffusion("someone/tiny-sd", img2img=True, variant="fp16")
    assert pipe.unet is not None and pipe.safety_checker is None

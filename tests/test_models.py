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

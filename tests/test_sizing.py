"""The sizing table: full-size models counted on the meta device, and the presets' requests kept in step with it."""

import pytest
import yaml

from conftest import REPO
from vlcp import full_models, sizing


def test_full_size_models_have_the_published_parameter_counts():
    counts = full_models.parameter_counts()
    # stable-diffusion-v1-5 unet/config.json, vae/config.json, text_encoder/config.json (vlcp/data/configs):
    # the model card's "860M UNet" and CLIP ViT-L/14's 123M text transformer.
    assert counts["unet"] == 859_520_964
    assert counts["sd_text_encoder"] == 123_060_480
    assert 83e6 < counts["vae"] < 84e6
    # llava-hf/llava-1.5-7b-hf config.json: CLIP ViT-L/14-336 + Vicuna-7B + the 2-layer projector.
    assert 7.0e9 < counts["llava"] < 7.1e9


@pytest.fixture(scope="module")
def sizes():
    configs = {name: sizing.load_preset(name) for name in sizing.preset_names()}
    return {name: sizing.size_preset(config, sizing.published_size(config)) for name, config in configs.items()}


def test_every_preset_asks_for_what_its_sizing_computes(sizes):
    for name, rules in sizes.items():
        preset = yaml.safe_load((REPO / "config" / "presets" / f"{name}.yaml").read_text())
        for rule, need in rules.items():
            asked = preset.get("resources", {}).get(rule, {})
            assert asked.get("mem_mb", 0) >= need["mem_mb"], (
                f"{name}: resources.{rule}.mem_mb below `python -m vlcp.sizing {name}`"
            )
            assert asked.get("runtime", 0) >= need["runtime"], f"{name}: resources.{rule}.runtime below the sizing"


def test_sizing_follows_the_settings():
    config = sizing.load_preset("imagenette")
    base = sizing.size_preset(config, sizing.published_size(config))
    config["finetune"]["train_batch_size"] *= 2
    config["caption"]["batch_size"] *= 2
    bigger = sizing.size_preset(config, sizing.published_size(config))
    assert bigger["finetune"]["gpu_gib"] > base["finetune"]["gpu_gib"]
    assert (
        bigger["caption"]["gpu_gib"] > base["caption"]["gpu_gib"]
        and bigger["caption"]["minutes"] < base["caption"]["minutes"]
    )
    # 7B parameters in bfloat16 are the floor of captioning's GPU memory.
    assert base["caption"]["gpu_gib"] > 7.06e9 * 2 / 2**30
    # U-Net weights, gradients, AdamW moments and EMA in float32: 20 bytes a parameter.
    assert base["finetune"]["gpu_gib"] > 859_520_964 * 20 / 2**30


def test_caption_time_is_priced_at_the_longest_caption_a_batch_may_run_to():
    """A batch decodes until its longest caption ends: every image pays caption.max_new_tokens steps."""
    config = sizing.load_preset("imagenette")
    base = sizing.size_preset(config, sizing.published_size(config))["caption"]["minutes"]
    config["caption"]["max_new_tokens"] *= 2
    longer = sizing.size_preset(config, sizing.published_size(config))["caption"]["minutes"]
    assert 1.8 < longer / base < 2.0, "decoding dominates: twice the cap, nearly twice the time"


def test_fine_tune_disk_counts_the_checkpoints_on_disk_at_once_and_the_pipeline():
    sd = {"unet_params": 100, "vae_params": 10, "text_params": 15}
    checkpoint, pipeline = 100 * 16, 125 * 4  # float32 weights + AdamW moments + EMA; the float32 pipeline
    config = sizing.load_preset("imagenette")
    config["finetune"]["use_ema"] = True
    config["execution"]["finetune"].update(checkpointing_steps=500, checkpoints_total_limit=2)
    assert sizing.finetune_disk(config, sd, 500) == pipeline, "no checkpoint at the last step"
    assert sizing.finetune_disk(config, sd, 592) == checkpoint + pipeline
    assert sizing.finetune_disk(config, sd, 5000) == 2 * checkpoint + pipeline
    config["execution"]["finetune"]["checkpoints_total_limit"] = 1
    assert sizing.finetune_disk(config, sd, 5000) == 2 * checkpoint, "the newest stays while the next is written"
    config["finetune"]["use_ema"] = False
    assert sizing.finetune_disk(config, sd, 5000) == 2 * 100 * 12

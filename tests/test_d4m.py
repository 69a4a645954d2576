"""The method d4m: D4M's prototypes and prompts (vlcp.d4m), its pipeline's settings (config section d4m),
and a plan that fine-tunes nothing."""

import json

import numpy as np
import pytest
import torch
import yaml

from conftest import DEMO_CONFIG, snakemake
from vlcp import contract, d4m
from vlcp.settings import section, stage_keys

# Every value of D4M's code that vlcp's d4m takes as a default, with where it is (suduo94/D4M at
# da35d100fdd57896807165d2d0984960fa503762); its ImageNet scripts' values where they pass one.
D4M_VALUES = {
    # gen_prototype_imgnt.sh:7 passes --km_expand 1 (gen_prototype.py:37 defaults to 10)
    "km_expand": 1,
    # gen_prototype.py:80-84: a chunk is fitted when it holds km_expand x IPC latents; after the loop only
    # the list of the last label seen is fitted (>= IPC), so every other class drops its short last chunk
    "leftover": "drop",
    # gen_syn_image_imgnt.sh:5 passes --strength 0.7 (gen_syn_image.py:39 defaults to 0.75)
    "strength": 0.7,
    # gen_syn_image_imgnt.sh:4 passes --guidance_scale 8 (gen_syn_image.py:27 defaults to 8)
    "guidance_scale": 8,
    # gen_syn_image.py:65 passes no step count; scripts/pipeline_stable_diffusion_latents2img.py:604 defaults to 50
    "num_inference_steps": 50,
    # gen_syn_image.py:65: negative_prompt='cartoon, anime, painting'
    "negative_prompt": "cartoon, anime, painting",
    # gen_syn_image.py:80: the pipeline from_pretrained of Stable Diffusion v1.5, whose scheduler it keeps
    "scheduler": "checkpoint",
    # scripts/pipeline_stable_diffusion_latents2img.py:345-346: the prompt tokenized to model_max_length,
    # truncation=True
    "prompt_encoding": "truncate",
    # gen_syn_image.py:80 passes no safety_checker=None, so SD v1.5's checker runs
    # (scripts/pipeline_stable_diffusion_latents2img.py:769-771) and blacks out the images it flags
    "safety_checker": True,
}
# Where vlcp's default is not D4M's, on purpose (docs/fidelity.md, "D4M's column"): a black image is a
# training image lost. d4m.synthesize.safety_checker: true is D4M's way.
NOT_D4MS = {"safety_checker": False}


def test_the_d4m_defaults_are_d4ms_values():
    synthesis = section("d4m")["synthesize"]["properties"]
    defaults = {key: spec["default"] for key, spec in {**section("d4m"), **synthesis}.items() if key != "synthesize"}
    assert defaults == {**D4M_VALUES, **NOT_D4MS}


def test_only_the_prototype_settings_are_options_of_the_d4m_stage():
    # the pipeline settings (d4m.synthesize) go to stage 7 (rules/functions/d4m.smk), so changing one reruns
    # no clustering; each stands in for the synthesize key of its name
    assert stage_keys("d4m") == ["km_expand", "leftover"]
    assert set(section("d4m")["synthesize"]["properties"]) < set(stage_keys("synthesize"))


def test_minibatch_kmeans_is_d4ms():
    """MiniBatchKMeans(n_clusters=ipc, random_state=0, batch_size=km_expand * ipc, n_init='auto'),
    partial_fit per chunk (gen_prototype.py:55-56, 80-82): at seed 0 and in the same order, the same centres."""
    from sklearn.cluster import MiniBatchKMeans

    rng = np.random.default_rng(3)
    features = rng.normal(size=(47, 16))
    centres, labels, fitted = d4m.minibatch_prototypes(features, ipc=4, seed=0, km_expand=2)
    theirs = MiniBatchKMeans(n_clusters=4, random_state=0, batch_size=8, n_init="auto")
    order = d4m.visiting_order(47, 0)
    for start in range(0, 40, 8):
        theirs.partial_fit(features[order[start : start + 8]])
    assert np.array_equal(centres, theirs.cluster_centers_)
    assert fitted == 40 and (labels[order[40:]] == -1).all() and (labels[order[:40]] >= 0).all()


@pytest.mark.parametrize(
    "n, ipc, km_expand, leftover, expected",
    [
        (25, 10, 1, "drop", [(0, 10), (10, 20)]),
        (25, 10, 1, "fit", [(0, 10), (10, 20)]),  # the rest, 5, is fewer than IPC
        (25, 5, 2, "fit", [(0, 10), (10, 20), (20, 25)]),
        (9, 10, 1, "fit", []),
    ],
)
def test_chunks(n, ipc, km_expand, leftover, expected):
    assert d4m.chunks(n, ipc, km_expand, leftover) == expected


def test_a_class_smaller_than_ipc_gets_one_prototype_per_image():
    latents = torch.randn(2, 4, 2, 2)
    labels, centres, note = d4m.class_prototypes(latents, ipc=3, seed=0)
    assert centres.shape == (3, 4, 2, 2) and torch.equal(centres[2], latents[0])
    assert "only 2 images" in note


def test_the_stage_writes_the_contract_files_with_the_label_as_every_prompt(tmp_path):
    images = [f"train/seven/{i}.png" for i in range(30)]
    contract.write_latents(tmp_path / "seven.safetensors", {"latents": torch.randn(30, 4, 2, 2)}, images)
    index = [
        {"image": p, "class": "seven", "label": "the digit seven", "width": 8, "height": 8, "mode": "L"} for p in images
    ]
    contract.write_index(tmp_path / "seven.jsonl", index)
    out = tmp_path / "out"
    argv = ["--latents", str(tmp_path / "seven.safetensors"), "--index", str(tmp_path / "seven.jsonl")]
    argv += ["--ipc", "3", "--seed", "1", "--km-expand", "2"]
    argv += ["--clusters", str(out / "c.json"), "--centres", str(out / "c.safetensors")]
    d4m.main([*argv, "--prototypes", str(out / "p.json")])
    clusters, centres = contract.read_clusters(out / "c.json", out / "c.safetensors")
    prompts = contract.read_prototypes(out / "p.json")
    assert [p["prompt"] for p in prompts] == ["the digit seven"] * 3
    assert centres.shape == (3, 4, 2, 2) and sum(map(len, clusters["members"])) == 30  # 30 = 5 chunks of 6
    record = json.loads((out / "c.json.provenance.json").read_text())
    assert record["stage"] == "d4m" and record["settings"]["km_expand"] == 2


@pytest.mark.workflow
def test_a_d4m_run_plans_no_fine_tune_and_no_captions(tmp_path):
    """...and its synthesis loads the base model's weights variant (a hub id whose cache holds only the fp16
    files cannot be loaded otherwise)."""
    from vlcp.plan import parse_dry_run

    config = tmp_path / "d4m.yaml"
    settings = {"methods": ["d4m"], "models": {"diffusion_variant": "fp16"}}
    config.write_text(yaml.safe_dump(settings))
    planned = snakemake(tmp_path, "-n", "-p", "--configfile", str(DEMO_CONFIG), str(config))
    jobs = {(rule, ", ".join(f"{k}={v}" for k, v in w.items())) for rule, w in parse_dry_run(planned.stdout)}
    commands = [ln for ln in planned.stdout.splitlines() if "python -m vlcp synthesize" in ln]
    assert commands and all("--variant fp16" in c and "--no-safety-checker" in c for c in commands)
    rules = {rule for rule, _ in jobs}
    assert {"d4m_prototype", "d4m_synthesize", "encode", "evaluate", "soft_label"} <= rules
    assert not rules & {"finetune", "caption", "cluster", "text_prototype", "synthesize"}
    models = {wildcards for rule, wildcards in jobs if rule == "tiny_model"}
    assert len(models) == 1 and "stable-diffusion" in models.pop(), "only the diffusion model is built"

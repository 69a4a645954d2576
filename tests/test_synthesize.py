"""Stage 7 on the tiny pipeline: IPC images of the evaluation size; one image regenerated alone matches."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vlcp import contract, tiny_models
from vlcp.models import load_stable_diffusion
from vlcp.synthesize import chunk_ids, encode_prompt, image_seed, synthesize

LONG = " ".join(["a brown dog with long ears standing on green grass"] * 12)


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth") / "sd"
    tiny_models.save_tiny_stable_diffusion(folder, seed=0, resolution=32)
    return folder


@pytest.fixture(scope="module")
def pipe(pipeline_dir):
    pipe = load_stable_diffusion(str(pipeline_dir), img2img=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_long_prompts_are_chunked_or_truncated(pipe):
    ids = chunk_ids(pipe.tokenizer, LONG)
    assert ids.shape[1] == 77 and ids.shape[0] > 1
    assert (ids[:, 0] == pipe.tokenizer.bos_token_id).all()
    assert chunk_ids(pipe.tokenizer, LONG, truncate=True).shape == (1, 77)
    negative = encode_prompt(pipe, "cartoon", chunks=ids.shape[0])
    assert negative.shape[1] == encode_prompt(pipe, LONG).shape[1]


def test_batch_and_single_regeneration_give_the_same_pixels(pipe):
    centres = torch.randn(4, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    prompts = ["a dog", LONG, "a white dog running", "grass"]
    seeds = [image_seed("dog", k, 0) for k in range(4)]
    kwargs = dict(negative_prompt="cartoon, anime, painting", strength=0.7, guidance_scale=10.0, steps=10)
    batch = synthesize(pipe, centres, prompts, seeds, batch_size=4, **kwargs)
    assert len(batch) == 4 and all(img.size == (32, 32) for img in batch)
    alone = synthesize(pipe, centres[2:3], prompts[2:3], seeds[2:3], batch_size=1, **kwargs)
    assert np.array_equal(np.asarray(alone[0]), np.asarray(batch[2]))
    long_alone = synthesize(pipe, centres[1:2], prompts[1:2], seeds[1:2], batch_size=1, **kwargs)
    assert np.array_equal(np.asarray(long_alone[0]), np.asarray(batch[1]))
    assert not np.array_equal(np.asarray(batch[0]), np.asarray(batch[2]))
    made = []
    resumed = synthesize(pipe, centres, prompts, seeds, batch_size=4, done={0: batch[0]},
                         on_image=lambda k, img: made.append(k), **kwargs)
    assert sorted(made) == [1, 2, 3], "a resumed batch keeps the finished image and makes the rest"
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(resumed, batch))


def test_image_seed_depends_on_class_cluster_and_seed():
    assert image_seed("dog", 0, 0) == image_seed("dog", 0, 0)
    assert len({image_seed("dog", 0, 0), image_seed("dog", 1, 0), image_seed("dog", 0, 1), image_seed("cat", 0, 0)}) == 4


def test_cli_writes_ipc_images_of_the_evaluation_size(pipeline_dir, tmp_path):
    ipc = 3
    centres = torch.randn(ipc, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    clusters = {"members": [["a"], ["b"], ["c"]], "outliers": []}
    contract.write_clusters(tmp_path / "c.json", tmp_path / "c.safetensors", clusters, centres)
    prompts = [{"prompt": p, "image": None, "keywords": [], "nonrepresentative": []} for p in ("a dog", LONG, "cat")]
    contract.write_prototypes(tmp_path / "p.json", prompts)
    out = tmp_path / "distilled" / "dog"
    cmd = [sys.executable, "-m", "vlcp.synthesize", "--model", str(pipeline_dir), "--clusters", str(tmp_path / "c.json"),
           "--prototypes", str(tmp_path / "p.json"), "--class", "dog", "--seed", "0", "--steps", "10",
           "--batch-size", "2", "--size", "20", "--work", str(tmp_path / "work"), "--out", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == ["0.png", "1.png", "2.png"]
    assert all(Image.open(out / f).size == (20, 20) for f in files)
    assert not (tmp_path / "work").exists()

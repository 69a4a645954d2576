"""Stage 4, encode, on the tiny VAE: the latents' shape, identical bytes, and the images as the authors squash them."""

import torch

from conftest import calls, wrapped
from vlcp import contract
from vlcp.index import index_class


def encode(world, out, *options):
    args = [
        "--index",
        world / "index" / "three.jsonl",
        "--root",
        world / "data",
        "--model",
        world / "sd",
        "--resolution",
        32,
        "--batch-size",
        8,
        "--out",
        out,
        *options,
    ]
    result = wrapped("vlcp.encode", "encode_images", args, out.with_suffix(".count"))
    assert result.returncode == 0, result.stderr
    return calls(out.with_suffix(".count"))


def test_encode_shape_and_identical_bytes(world, tmp_path):
    crops = ("--resize", "crop", "--train-resolution", 32, "--flip")
    encode(world, tmp_path / "a.safetensors", *crops)
    encode(world, tmp_path / "b.safetensors", *crops)
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    tensors, images = contract.read_latents(tmp_path / "a.safetensors")
    # centre crops at the fine-tune resolution are the clustering latents too: stored once
    assert set(tensors) == {"latents", "latents_flipped"}
    assert tensors["latents"].shape == (20, 4, 4, 4) and tensors["latents_flipped"].shape == (20, 4, 4, 4)
    assert images == [r["image"] for r in contract.read_index(world / "index" / "three.jsonl")]
    assert not torch.equal(tensors["latents"], tensors["latents_flipped"])


def test_clustering_latents_squash_the_whole_image(world, tmp_path):
    import numpy as np
    from PIL import Image

    from vlcp.encode import encode_images
    from vlcp.models import load_vae

    rng = np.random.default_rng(0)
    (tmp_path / "data" / "train" / "wide").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (24, 48, 3), dtype=np.uint8)).save(
            tmp_path / "data" / "train" / "wide" / f"{i}.png"
        )
    records, _ = index_class(tmp_path / "data", "train", "wide", "wide", [".png"], 10**6)
    contract.write_index(tmp_path / "wide.jsonl", records)
    out = tmp_path / "s.safetensors"
    args = [
        "--index",
        tmp_path / "wide.jsonl",
        "--root",
        tmp_path / "data",
        "--model",
        world / "sd",
        "--resolution",
        32,
        "--train-resolution",
        16,
        "--flip",
        "--out",
        out,
    ]
    assert wrapped("vlcp.encode", "encode_images", args, tmp_path / "count").returncode == 0
    tensors, images = contract.read_latents(out)
    # the authors' gen_prototype.py: transforms.Resize((size, size)) of the whole image, no crop; the
    # fine-tuning latents are centre crops (diffusers' recipe), stored beside them with their mirror images
    assert set(tensors) == {"latents", "train_latents", "train_latents_flipped"}
    assert tensors["latents"].shape == (3, 4, 4, 4) and tensors["train_latents"].shape == (3, 4, 2, 2)
    vae = load_vae(str(world / "sd"))
    first = Image.open(tmp_path / "data" / images[0]).convert("RGB")
    squashed = encode_images(vae, [first.resize((32, 32), Image.Resampling.BILINEAR)], 1)
    torch.testing.assert_close(tensors["latents"][:1], squashed, rtol=0, atol=1e-5)
    # Resize(16): 48x24 -> 32x16, then CenterCrop(16)
    crop = first.resize((32, 16), Image.Resampling.BILINEAR).crop((8, 0, 24, 16))
    torch.testing.assert_close(tensors["train_latents"][:1], encode_images(vae, [crop], 1), rtol=0, atol=1e-5)

"""Stage 4, encode: the VAE latents of one class's train images.

Each latent is ``latent_dist.mean * scaling_factor`` (deterministic, unlike the
authors' sample). ``latents``, which clustering, the baselines and synthesis
read, are of the whole image squeezed to a square of ``--resolution`` (the
authors' gen_prototype.py: ``Resize((512, 512))``), or of its centre crop. When
fine-tuning trains from the cache, ``train_latents`` (and ``train_latents_flipped``
for random flips) are of the centre crop at the fine-tune resolution, as
diffusers' text-to-image recipe crops; they are not stored again where
``latents`` already are that.
"""

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from vlcp import contract, provenance
from vlcp.cli import run
from vlcp.images import load_rgb, resize_center_crop, resize_square, to_tensor
from vlcp.models import device, dtype_for, load_vae
from vlcp.parallel import thread_map
from vlcp.parts import each_class
from vlcp.settings import add_settings


@torch.inference_mode()
def encode_images(vae, images, batch_size, progress_label=None):
    """Scaled VAE posterior means of same-size PIL images, as a float32 tensor (N, 4, H/8, W/8)."""
    out = []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc=progress_label, unit="batch", disable=progress_label is None, file=sys.stderr):
        pixels = to_tensor(images[start : start + batch_size]).to(vae.device, vae.dtype)
        out.append(vae.encode(pixels).latent_dist.mean.float().cpu())
    return torch.cat(out) * vae.config.scaling_factor


RESIZES = {"squash": resize_square, "crop": resize_center_crop}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", nargs="+", required=True, type=Path, help="per class: train index (JSON lines)")
    parser.add_argument("--root", required=True, type=Path, help="dataset root the index paths are relative to")
    parser.add_argument("--model", required=True, help="Stable Diffusion hub id or folder (only vae/ is read)")
    parser.add_argument(
        "--train-resolution", type=int, help="also store centre-crop latents at this side for fine-tuning"
    )
    parser.add_argument("--variant", help="weights variant of the model files, e.g. fp16 (default: detected)")
    parser.add_argument("--flip", action="store_true", help="also store fine-tuning latents of the mirrored images")
    parser.add_argument("--out", nargs="+", required=True, type=Path, help="per class: latents (safetensors)")
    add_settings(parser, "encode")
    args = parser.parse_args(argv)
    if args.flip and args.train_resolution is None:
        parser.error("--flip stores fine-tuning latents: give --train-resolution too")
    on = device()
    vae = load_vae(args.model, dtype=dtype_for(args.dtype, on), variant=args.variant).to(on).eval()
    for one in each_class(args, ("index", "out")):
        encode_class(vae, one)


def encode_class(vae, args):
    records = contract.read_index(args.index)
    originals = thread_map(lambda r: load_rgb(args.root / r["image"]), records)
    label = f"encode {records[0]['class']}"
    images = [RESIZES[args.resize](img, args.resolution) for img in originals]
    latents = encode_images(vae, images, args.batch_size, label)
    train = flipped = None
    if args.train_resolution is not None and (args.resize, args.resolution) != ("crop", args.train_resolution):
        images = [resize_center_crop(img, args.train_resolution) for img in originals]
        train = encode_images(vae, images, args.batch_size, label + " (fine-tuning crops)")
    if args.flip:
        mirrored = [img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for img in images]
        flipped = encode_images(vae, mirrored, args.batch_size, label + " (flipped)")
    latents = contract.latents_tensors(latents, train, flipped)
    contract.write_latents(args.out, latents, [r["image"] for r in records])
    provenance.record(args.out, "encode", vars(args), models=[args.model])
    shapes = ", ".join(f"{name} {tuple(t.shape[1:])}" for name, t in latents.items())
    print(f"{len(records)} latents written: {shapes}", file=sys.stderr)


if __name__ == "__main__":
    run(main)

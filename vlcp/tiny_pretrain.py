"""The tiny Stable Diffusion's weights: its VAE and U-Net pretrained on the demo's train digits.

A randomly initialised diffusion model makes coloured noise, so the demo's
distilled images would say nothing of the method. These weights make the tiny
pipeline a small digit generator: the VAE reconstructs the demo's 64-px digits
through SD v1.5's 8x-downsampled, 4-channel latents (rescaled so that latents
times SD's scaling factor have unit variance per channel), and the U-Net
predicts the noise of those latents on SD v1.5's training schedule. The tiny
captioner's words say nothing of the digit, so the U-Net learns no text
conditioning: its cross-attention outputs stay zero until the fine-tune stage
trains them.

For a dataset other than the digits, the same training on the run's own train images
(``--index``, the workflow's ``tiny_pretrain`` rule when models.tiny_pretrained is 'train') makes
a tiny model that draws that dataset's kind of image, where the digit weights would draw digits.

The weights ship in ``vlcp/data/tiny_sd_digits/``; ``python -m vlcp tiny_pretrain
vlcp/data/tiny_sd_digits`` remakes them bit for bit on the same kind of CPU, torch build and
thread count (a few minutes on 2 cores), and a test checks that it still does; on another kind of CPU
(whose kernels round differently) it checks that the remade weights do what the shipped ones do.
"""

import argparse
import math
import sys
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from vlcp.atomic import atomic_dir
from vlcp.cli import run

# The demo's default split (config/demo.yaml's demo block): the digits pretrained on are its train images.
DEMO_SPLIT = {"train_per_class": 40, "val_per_class": 20, "seed": 0}
DEMO_IMAGE_SIZE = 32
RESOLUTION = 64  # the demo's encode and fine-tune resolution
THREADS = 2
DEFAULTS = {
    "vae_steps": 500,
    "vae_batch": 16,
    "vae_lr": 1e-3,
    "unet_steps": 2000,
    "unet_batch": 32,
    "unet_lr": 1e-3,
    "warmup": 100,
    "seed": 0,
}
WEIGHTS = ("vae", "unet")


def digit_pixels(split="train"):
    """The demo's digits of ``split`` as the stages see them: written as 32-px grayscale PNGs, read as RGB
    and squeezed to 64 px by the encode stage's resize. (N, 3, 64, 64) in [-1, 1], class by class."""
    from vlcp import demo_data
    from vlcp.images import resize_square, to_rgb, to_tensor

    digits = demo_data.split_digits(DEMO_SPLIT["train_per_class"], DEMO_SPLIT["val_per_class"], DEMO_SPLIT["seed"])[
        split
    ]
    images = [
        resize_square(to_rgb(demo_data.digit_image(a, DEMO_IMAGE_SIZE)), RESOLUTION)
        for arrays in digits.values()
        for a in arrays
    ]
    return to_tensor(images).contiguous()  # to_tensor's is a channels-last view, which convolutions round differently


def train_pixels(index_files, root, resolution):
    """A run's train images, listed by its index files, as the encode stage squeezes them: (N, 3, R, R)
    in [-1, 1], class by class."""
    from vlcp import contract
    from vlcp.images import load_rgb, resize_square, to_tensor
    from vlcp.parallel import thread_map

    records = [record for path in index_files for record in contract.read_index(path)]
    images = thread_map(lambda r: resize_square(load_rgb(Path(root) / r["image"]), resolution), records)
    return to_tensor(images).contiguous()


def warmup_cosine(steps, warmup):
    return lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / steps))


def train_vae(vae, pixels, steps, batch, lr, generator):
    """Reconstruction of the posterior mean (the latent every stage uses), MSE in pixels."""
    vae.train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    for _ in tqdm(range(steps), desc="pretrain VAE", unit="step", file=sys.stderr):
        x = pixels[torch.randint(0, len(pixels), (batch,), generator=generator)]
        loss = F.mse_loss(vae.decode(vae.encode(x).latent_dist.mean).sample, x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    vae.eval()
    return loss.item()


@torch.no_grad()
def rescale_latents(vae, pixels):
    """Scale each latent channel (an exact change of variables: the encoder's mean rows times s, the
    decoder's input columns divided by s) so that mean x scaling_factor has unit variance; and make the
    posterior's variance negligible, so that a sample is the mean."""
    means = vae.encode(pixels).latent_dist.mean
    scale = 1.0 / (means.std(dim=(0, 2, 3)) * vae.config.scaling_factor)
    channels = len(scale)
    vae.quant_conv.weight[:channels] *= scale.view(-1, 1, 1, 1)
    vae.quant_conv.bias[:channels] *= scale
    vae.quant_conv.weight[channels:] = 0.0
    vae.quant_conv.bias[channels:] = -30.0  # the lowest log-variance diffusers keeps
    vae.post_quant_conv.weight /= scale.view(1, -1, 1, 1)
    return vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor


def train_unet(unet, latents, alphas_cumprod, steps, batch, lr, warmup, generator):
    """Noise prediction on uniformly drawn timesteps of the pipeline's schedule; the cross-attention
    (attn2) is left out and its output projections set to zero, so the text does not matter."""
    for name, param in unet.named_parameters():
        if "attn2.to_out" in name:
            torch.nn.init.zeros_(param)
    params = [p for n, p in unet.named_parameters() if ".attn2." not in n]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps, warmup))
    context = torch.zeros(batch, 1, unet.config.cross_attention_dim)
    unet.train()
    for _ in tqdm(range(steps), desc="pretrain U-Net", unit="step", file=sys.stderr):
        x0 = latents[torch.randint(0, len(latents), (batch,), generator=generator)]
        t = torch.randint(0, len(alphas_cumprod), (batch,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        a = alphas_cumprod[t].view(-1, 1, 1, 1)
        loss = F.mse_loss(unet(a.sqrt() * x0 + (1 - a).sqrt() * noise, t, context).sample, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    unet.eval()
    return loss.item()


def pretrain(settings, pixels=None, resolution=RESOLUTION):
    """The pretrained tiny pipeline (VAE and U-Net trained; the rest as ``build_tiny_stable_diffusion``), on
    ``pixels`` ((N, 3, R, R) in [-1, 1]; the demo's train digits when None)."""
    from vlcp.tiny_models import build_tiny_stable_diffusion

    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    pipe = build_tiny_stable_diffusion(settings["seed"], resolution)
    generator = torch.Generator().manual_seed(settings["seed"])
    pixels = digit_pixels() if pixels is None else pixels
    vae_loss = train_vae(pipe.vae, pixels, settings["vae_steps"], settings["vae_batch"], settings["vae_lr"], generator)
    with torch.no_grad():
        latents = rescale_latents(pipe.vae, pixels)
    unet_loss = train_unet(
        pipe.unet,
        latents,
        pipe.scheduler.alphas_cumprod,
        settings["unet_steps"],
        settings["unet_batch"],
        settings["unet_lr"],
        settings["warmup"],
        generator,
    )
    print(
        f"{len(pixels)} images; VAE reconstruction MSE {vae_loss:.4f} (last batch), U-Net noise MSE {unet_loss:.4f} "
        f"(last batch)",
        file=sys.stderr,
    )
    return pipe


@torch.no_grad()
def quality(vae, unet, alphas_cumprod, seed=1):
    """What the weights do on the demo's val digits: the VAE's reconstruction MSE (pixels) and the U-Net's
    noise MSE on one draw of timesteps and noise from ``seed``, as trained above."""
    pixels = digit_pixels("val")
    generator = torch.Generator().manual_seed(seed)
    means = vae.encode(pixels).latent_dist.mean
    reconstruction = F.mse_loss(vae.decode(means).sample, pixels).item()
    x0 = means * vae.config.scaling_factor
    t = torch.randint(0, len(alphas_cumprod), (len(x0),), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    a = alphas_cumprod[t].view(-1, 1, 1, 1)
    context = torch.zeros(len(x0), 1, unet.config.cross_attention_dim)
    return {
        "vae_mse": reconstruction,
        "unet_mse": F.mse_loss(unet(a.sqrt() * x0 + (1 - a).sqrt() * noise, t, context).sample, noise).item(),
    }


def save(pipe, out_dir, settings):
    from safetensors.torch import save_file

    metadata = {k: str(v) for k, v in settings.items()}
    with atomic_dir(out_dir) as tmp:
        for name in WEIGHTS:
            state = {k: v.detach().contiguous() for k, v in getattr(pipe, name).state_dict().items()}
            save_file(state, tmp / f"{name}.safetensors", metadata=metadata)


def load_pretrained(pipe, folder=None):
    """Put pretrained weights into a pipeline built by ``build_tiny_stable_diffusion`` (any resolution): the
    shipped digit weights, or those ``tiny_pretrain`` wrote to ``folder``."""
    from safetensors.torch import load_file

    folder = resources.files("vlcp.data").joinpath("tiny_sd_digits") if folder is None else Path(folder)
    for name in WEIGHTS:
        with resources.as_file(folder.joinpath(f"{name}.safetensors")) as path:
            getattr(pipe, name).load_state_dict(load_file(path))
    return pipe


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m vlcp tiny_pretrain", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="new folder for vae.safetensors and unet.safetensors")
    for key, value in DEFAULTS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--index", nargs="+", type=Path, help="a run's train index files: train on its images")
    parser.add_argument("--root", type=Path, help="the dataset root the index paths are relative to")
    parser.add_argument("--resolution", type=int, default=RESOLUTION, help="the tiny pipeline's image size")
    args = parser.parse_args(argv)
    if args.index and args.root is None:
        parser.error("--index needs --root")
    settings = {k: getattr(args, k) for k in DEFAULTS}
    pixels = train_pixels(args.index, args.root, args.resolution) if args.index else None
    save(pretrain(settings, pixels, args.resolution), args.out_dir, settings)
    print(f"weights written to {args.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    run(main)

"""Fine-tuning: training from cached latents vs encoding every image at every step, in steps/s.

Both run the same U-Net training step (noise, timestep, text states, MSE loss, AdamW) at the
same batch; the baseline first encodes the batch's images with the VAE, as the recipe does
without a latent cache. ``--full`` uses SD v1.5's architecture at 512 px (GPU, fp16 autocast),
the default the tiny pipeline. Target: at least 1.3x.

    python bench/finetune.py [--full] [--batch 8] [--steps 10]
"""

import argparse

import torch
import torch.nn.functional as F
from common import device, report, stable_diffusion, timed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    on = device()
    pipe = stable_diffusion(args.full, on, torch.float32)
    unet, vae, text_encoder = pipe.unet.train(), pipe.vae.requires_grad_(False), pipe.text_encoder.requires_grad_(False)
    side = 512 if args.full else 64
    images = torch.rand(args.batch, 3, side, side, device=on) * 2 - 1
    with torch.no_grad():
        cached = vae.encode(images).latent_dist.mean * vae.config.scaling_factor
    ids = pipe.tokenizer(
        ["a tench held by a man"] * args.batch,
        padding="max_length",
        max_length=77,
        truncation=True,
        return_tensors="pt",
    ).input_ids.to(on)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-5)
    amp = dict(device_type=on.type, dtype=torch.float16, enabled=on.type == "cuda")

    def train_step(latents):
        noise = torch.randn_like(latents)
        t = torch.randint(0, 1000, (len(latents),), device=on)
        noisy = pipe.scheduler.add_noise(latents, noise, t) if hasattr(pipe.scheduler, "add_noise") else latents + noise
        with torch.autocast(**amp):
            with torch.no_grad():
                states = text_encoder(ids)[0]
            loss = F.mse_loss(unet(noisy, t, states).sample.float(), noise.float())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def from_images():
        for _ in range(args.steps):
            with torch.no_grad(), torch.autocast(**amp):
                latents = vae.encode(images).latent_dist.sample() * vae.config.scaling_factor
            train_step(latents.float())

    def from_cache():
        for _ in range(args.steps):
            train_step(cached)

    base = timed(from_images, on)
    ours = timed(from_cache, on)
    print(f"device: {on}, model: {'SD v1.5 shape, 512 px' if args.full else 'tiny, 64 px'}, batch {args.batch}")
    report(
        [(f"{args.steps / base:.2f}", f"{args.steps / ours:.2f}", f"{base / ours:.2f}x")],
        ("encode-every-step steps/s", "cached-latents steps/s", "speed-up"),
    )


if __name__ == "__main__":
    main()

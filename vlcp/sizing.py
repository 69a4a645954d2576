"""Sizing: the GPU memory, host memory and run time each GPU rule of a preset needs.

Computed, not measured: the full-size models are built on the ``meta`` device (no memory, no
weights), where their parameters are counted, their FLOPs counted with torch's FlopCounterMode
and their activations measured from the tensors autograd saves and the largest intermediate of a
forward pass; the dataset's image counts and the preset's settings give the work. Time comes from
assumed sustained throughputs (``ASSUMED``), so run times are estimates to set SLURM requests
from, not measurements; GPU memory is an upper bound within about 25 %.

    python -m vlcp.sizing [PRESET ...]      # markdown table; PRESET names config/presets/<PRESET>.yaml
    python -m vlcp.sizing --resources PRESET  # the preset's `resources:` block
"""

import argparse
import functools
import math
from pathlib import Path

import torch

GIB = 2**30
REPO = Path(__file__).resolve().parents[1]

PRESETS = REPO / "config" / "presets"
# The presets of slurm/README.md's sizing table, in the paper's order (each preset's dataset.size is its size).
TABLE_PRESETS = ["imagenette", "imagewoof", "imageidc", "imagenet100", "imagenet1k", "cifar10", "cifar100"]

# Assumed sustained throughput of one H100 (A100: about half), the work of one caption, and the
# margins of a SLURM request over the estimate.
ASSUMED = {
    "half_flops": 100e12,  # float16/bfloat16 FLOP/s on SD and LLaVA (a tenth of the 989 dense peak)
    "fp32_flops": 40e12,  # TF32 FLOP/s (the VAE encodes in float32)
    "small_flops": 15e12,  # FLOP/s of ConvNet/ResNet training at batch 64 (launch-bound small kernels)
    "bandwidth": 2.0e12,  # bytes/s of weights read per decoding step (60 % of 3.35 TB/s)
    "decode_step_seconds": 0.025,  # the least time of one generate() step of a 7B model (Python, kernel launches)
    "prompt_tokens": 640,  # 576 image tokens and the instruction
    "cuda_context_gib": 1.5,  # CUDA context, cuBLAS/cuDNN workspaces
    "host_base_gib": 4.0,  # Python, torch, CUDA libraries, data of one class
    "time_margin": 2.0,  # runtime request = margin x estimate, rounded up
    "memory_margin": 1.25,
}


def load_preset(name):
    """The config of a preset as a run sees it: config.yaml, the preset, the schema's defaults."""
    from vlcp.config import load_run_config

    return load_run_config([PRESETS / f"{name}.yaml"], REPO)


def preset_names():
    """The presets, config/presets/*.yaml, by name."""
    return sorted(path.stem for path in PRESETS.glob("*.yaml"))


def published_size(config):
    """(classes, train images, val images) of a config's dataset.size, which each preset gives."""
    size = config["dataset"]["size"]
    if size is None:
        raise ValueError(f"run {config['run']!r} has no dataset.size (classes, train, val) to be sized from")
    return size["classes"], size["train"], size["val"]


def flops(model, *inputs, **kwargs):
    """FLOPs of one forward pass (a multiply-add counts 2), on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(*inputs, **kwargs)
    return counter.get_total_flops()


def saved_bytes(model, *inputs, **kwargs):
    """Bytes of the tensors autograd keeps for the backward pass of one forward pass."""
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(*inputs, **kwargs)
    return total


def peak_intermediate_bytes(model, *inputs, **kwargs):
    """The largest input plus output of any one module in a forward pass without gradients: the live
    tensors at the peak of inference."""
    peak = 0

    def size(value):
        if isinstance(value, torch.Tensor):
            return value.numel() * value.element_size()
        if isinstance(value, (tuple, list)):
            return sum(size(v) for v in value)
        return 0

    def hook(module, args, output):
        nonlocal peak
        peak = max(peak, size(args) + size(output))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(*inputs, **kwargs)
    for handle in handles:
        handle.remove()
    return peak


def params(model):
    return sum(p.numel() for p in model.parameters())


@functools.cache
def stable_diffusion_costs():
    """Per image at 512 px: U-Net forward FLOPs; VAE encode/decode FLOPs; saved and peak bytes."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from vlcp.full_models import build_safety_checker, spec

    sd = spec("stable-diffusion-v1-5")
    with torch.device("meta"):
        unet = UNet2DConditionModel(**sd["unet"]).half()
        vae = AutoencoderKL(**sd["vae"])
        text = CLIPTextModel(CLIPTextConfig(**sd["text_encoder"]))
        latent, t, hidden = torch.randn(1, 4, 64, 64).half(), torch.tensor([500]), torch.randn(1, 77, 768).half()
        image = torch.randn(1, 3, 512, 512)
        unet.train()
        unet.enable_gradient_checkpointing()
        costs = {
            "unet_params": params(unet),
            "vae_params": params(vae),
            "text_params": params(text),
            "safety_params": params(build_safety_checker()),
            "unet_flops": flops(unet, latent, t, hidden),
            "unet_saved_checkpointed": saved_bytes(unet, latent, t, hidden),
        }
        unet.disable_gradient_checkpointing()
        costs["unet_saved"] = saved_bytes(unet, latent, t, hidden)
        costs["unet_peak"] = peak_intermediate_bytes(unet.eval(), latent, t, hidden)
        costs["encode_flops"] = flops(vae.encode, image)
        costs["encode_peak"] = peak_intermediate_bytes(vae.encoder, image)
        costs["decode_flops"] = flops(vae.decode, torch.randn(1, 4, 64, 64))
        costs["decode_peak"] = peak_intermediate_bytes(vae.decoder.half(), torch.randn(1, 4, 64, 64).half())
    return costs


@functools.cache
def llava_costs():
    from transformers import LlavaForConditionalGeneration

    from vlcp import tiny_models
    from vlcp.full_models import llava_config

    config = llava_config(tiny_models.build_tiny_llava_tokenizer(tiny_models.vocabulary()))
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    text = config.text_config
    return {
        "params": params(model),
        "language_params": params(model.model.language_model),
        "kv_bytes_per_token": 2
        * text.num_hidden_layers
        * text.num_key_value_heads
        * (text.hidden_size // text.num_attention_heads)
        * 2,
        "vocab": text.vocab_size,
    }


def network_costs(build, size):
    """Parameters, forward FLOPs, bytes saved for the backward and peak intermediate bytes of one image of
    side ``size`` through the network ``build()`` makes, on the meta device."""
    with torch.device("meta"):
        model = build()
        x = torch.randn(1, 3, size, size)
        return {
            "params": params(model),
            "flops": flops(model, x),
            "saved": saved_bytes(model, x),
            "peak": peak_intermediate_bytes(model.eval(), x),  # float32, as normalisation upcasts to it
        }


@functools.cache
def classifier_costs(name, num_classes, size, norm):
    from vlcp.networks import build_model

    return network_costs(lambda: build_model(name, num_classes, size, norm), size)


def request(gpu_gib, host_gib, minutes, least=30):
    """The estimate and what a SLURM job should ask for: memory with a margin, run time doubled and
    rounded up to ``least`` minutes (10 for per-class rules, whose request is per class)."""
    return {
        "gpu_gib": gpu_gib,
        "host_gib": host_gib,
        "minutes": minutes,
        "mem_mb": int(math.ceil(host_gib * ASSUMED["memory_margin"] / 4) * 4 * 1000),
        "runtime": int(math.ceil(max(minutes * ASSUMED["time_margin"], 1) / least) * least),
    }


def size_preset(config, dataset):
    """{rule: request} for the GPU rules of a run of ``config`` over ``dataset`` (classes, train, val)."""
    classes, train, val = dataset
    per_class = train / classes
    a = ASSUMED
    context = a["cuda_context_gib"]
    rules = {}

    llava = llava_costs()
    cap = config["caption"]
    batch = cap["batch_size"]
    sequence = a["prompt_tokens"] + cap["max_new_tokens"]
    weights = llava["params"] * 2
    gpu = weights + batch * sequence * llava["kv_bytes_per_token"] + batch * llava["vocab"] * 4 * 2
    prefill = 2 * llava["params"] * a["prompt_tokens"] / a["half_flops"]
    # A batch decodes until its longest caption ends, so every image of it costs that many steps: priced at
    # the cap, caption.max_new_tokens (the authors' 1024), which a batch reaches whenever one of its images
    # does not stop by itself. It is the bound the runtime request must cover, not a mean.
    decode = cap["max_new_tokens"] * max(weights / a["bandwidth"], a["decode_step_seconds"]) / batch
    rules["caption"] = request(
        gpu / GIB + context, weights / GIB + a["host_base_gib"], per_class * (prefill + decode) / 60, least=10
    )

    sd = stable_diffusion_costs()
    enc, ft = config["encode"], config["finetune"]
    # pixels relative to 512 px: the clustering latents, and the fine-tuning crops (and their mirror
    # images) where they are not the same latents
    cluster_pixels = (enc["resolution"] / 512) ** 2
    train_pixels = 0.0
    if ft["from_latents"]:
        copies = 2 if ft["random_flip"] else 1
        same = (enc["resize"], enc["resolution"]) == ("crop", ft["resolution"])
        train_pixels = (copies - (1 if same else 0)) * (ft["resolution"] / 512) ** 2
    largest = max(cluster_pixels, (ft["resolution"] / 512) ** 2)
    enc_bytes = 4 if enc["dtype"] in ("float32", "auto") else 2
    gpu = (
        sd["vae_params"] * enc_bytes
        + config["execution"]["encode"]["batch_size"] * sd["encode_peak"] * largest * enc_bytes / 4
    )
    seconds = per_class * (cluster_pixels + train_pixels) * sd["encode_flops"] / a["fp32_flops"]
    host = per_class * (3 * 512 * 512 * largest * 2 + 4 * 64 * 64 * (cluster_pixels + train_pixels) * 4)
    rules["encode"] = request(gpu / GIB + context, host / GIB + a["host_base_gib"], seconds / 60, least=10)

    pixels = (ft["resolution"] / 512) ** 2
    unet = sd["unet_params"]
    states = unet * (4 + 4 + 8 + (4 if ft["use_ema"] else 0))  # float32 weights, gradients, AdamW moments, EMA
    frozen = (sd["vae_params"] + sd["text_params"]) * 2
    saved = sd["unet_saved_checkpointed"] + sd["unet_peak"] * 4 if ft["gradient_checkpointing"] else sd["unet_saved"]
    gpu = states + frozen + ft["train_batch_size"] * saved * pixels
    updates = ft["max_train_steps"] or ft["num_train_epochs"] * train // (
        ft["train_batch_size"] * ft["gradient_accumulation_steps"]
    )
    images = updates * ft["train_batch_size"] * ft["gradient_accumulation_steps"]
    passes = 4 if ft["gradient_checkpointing"] else 3  # forward, backward (2x), recomputed forward
    gpus = max(1, config["resources"]["finetune"]["gpu"])
    seconds = images * passes * sd["unet_flops"] * pixels / a["half_flops"] / gpus
    host = unet * 4 * 2 + train * 77 * 4  # the U-Net as loaded and as trained; every caption's token ids
    rules["finetune"] = request(gpu / GIB + context, host / GIB + a["host_base_gib"], seconds / 60)
    rules["finetune"]["disk_gib"] = finetune_disk(config, sd, updates) / GIB

    syn = config["synthesize"]
    ipc = max(config["ipc"])
    batch = min(config["execution"]["synthesize"]["batch_size"], ipc)
    from vlcp.synthesize import denoiser_passes

    cfg = denoiser_passes(syn)
    steps = int(syn["num_inference_steps"] * syn["strength"])
    gpu = (unet + sd["vae_params"] + sd["text_params"]) * 2 + batch * max(cfg * sd["unet_peak"], sd["decode_peak"])
    per_image = steps * cfg * sd["unet_flops"] + sd["decode_flops"]
    # images per class of every set: each prompt strategy's VLCP sets (K images per prototype for K
    # candidates), and D4M's (at VLCP's schedule: an estimate)
    vlcp = "vlcp" in config["methods"]
    per_prototype = len(config["text_prototype"]["strategies"]) * sum(config["synthesize"]["candidates"]) if vlcp else 0
    per_prototype += 1 if "d4m" in config["methods"] else 0
    sets = len(config["seeds"]) * per_prototype * sum(config["ipc"])
    rules["synthesize"] = request(
        gpu / GIB + context,
        (unet + sd["vae_params"]) * 4 / GIB + a["host_base_gib"],
        ipc * max(config["synthesize"]["candidates"]) * per_image / a["half_flops"] / 60,
        least=10,
    )
    rules["synthesize"]["images_per_class"] = sets

    from vlcp.rded import STUDENTS

    worst = None
    runs = [
        (protocol, name, ipc)
        for protocol in config["evaluate"]["protocols"]
        for name in config["evaluate"]["models"]
        if protocol == "minimax" or name in STUDENTS
        for ipc in config["ipc"]
    ]
    for protocol, name, ipc in runs:  # each protocol's models (the rded protocol trains its students only)
        estimate = (soft_label_estimate if protocol == "rded" else evaluation_estimate)(config, dataset, name, ipc)
        if worst is None or estimate["minutes"] > worst["minutes"]:
            worst = {**estimate, "gpu_gib": max(estimate["gpu_gib"], (worst or estimate)["gpu_gib"])}
    rules["evaluate"] = worst
    return rules


def finetune_disk(config, sd, updates):
    """Peak bytes on disk of one fine-tune job: its resumable checkpoints under work/finetune/<ft>/ (float32
    U-Net, AdamW's two moments, the EMA copy), and the float32 pipeline it writes at the end beside
    finetune/<ft>/ while the newest checkpoints are still kept. ``vlcp.finetune.save_checkpoint`` removes
    old checkpoints before writing a new one, so at most max(limit, 2) are on disk at once, and none is
    written at the last step."""
    ft, limit = config["finetune"], config["execution"]["finetune"]["checkpoints_total_limit"]
    every = config["execution"]["finetune"]["checkpointing_steps"]
    unet = sd["unet_params"]
    checkpoint = unet * (4 + 8 + (4 if ft["use_ema"] else 0))
    # the pipeline in float32, with the base model's safety checker (SD v1.5 has one; vlcp.finetune keeps it)
    pipeline = (unet + sd["vae_params"] + sd["text_params"] + sd.get("safety_params", 0)) * 4
    saves = (updates - 1) // every
    while_saving = min(saves - 1, max(limit - 1, 1)) + 1 if saves else 0
    return max(while_saving * checkpoint, min(saves, limit) * checkpoint + pipeline)


def evaluation_estimate(config, dataset, model, ipc):
    """The request of one evaluation job: ``model`` trained on ``ipc`` images per class ('all': the whole
    train set)."""
    from vlcp.config import evaluation_settings

    classes, train, val = dataset
    a = ASSUMED
    ev = evaluation_settings(config["evaluate"], ipc, classes, config["dataset"]["eval_size"])
    c = classifier_costs(model, classes, ev["input_size"], ev["norm"])
    epochs = ev["epochs"]
    train_images = train if ipc == "all" else int(ipc) * classes
    tests = epochs // ev["test_every"] + 1
    seconds = (epochs * train_images * 3 * c["flops"] + tests * val * c["flops"]) / a["small_flops"]
    test_batch = min(config["execution"]["evaluate"]["test_batch_size"], val)
    gpu = c["params"] * 16 + ev["batch_size"] * c["saved"] + test_batch * c["peak"]
    host = (train_images + val) * 3 * ev["input_size"] ** 2 / GIB + a["host_base_gib"]
    return {
        **request(gpu / GIB + a["cuda_context_gib"], host, seconds / 60),
        "case": f"{model}, IPC {ipc}, {epochs} epochs",
    }


@functools.cache
def soft_label_costs(name, num_classes, size):
    """``classifier_costs`` of a network of the soft-label protocol (``vlcp.rded.build_network``)."""
    from vlcp.rded import build_network

    return network_costs(lambda: build_network(name, num_classes, size), size)


def soft_label_estimate(config, dataset, model, ipc):
    """The request of one soft-label (RDED protocol) job: ``model`` trained on ``ipc`` images per class
    against the teacher, which runs forward on every augmented batch, as does the student's extra
    no-grad pass (vlcp.rded.soft_label_step)."""
    from vlcp.config import soft_label_settings

    classes, train, val = dataset
    a = ASSUMED
    soft = soft_label_settings(config["soft_label"], ipc, classes, config["dataset"]["eval_size"])
    size = soft["input_size"]
    student = soft_label_costs(model, classes, size)
    teacher = soft_label_costs(config["teacher"]["architecture"], classes, size)
    epochs, train_images = soft["epochs"], int(ipc) * classes
    tests = max(1, epochs // 5 // 10) + 1  # every 10 epochs past 80 %, and after the last
    per_image = 3 * student["flops"] + student["flops"] + teacher["flops"]
    seconds = (epochs * train_images * per_image + tests * val * student["flops"]) / a["small_flops"]
    test_batch = min(config["execution"]["soft_label"]["test_batch_size"], val)
    gpu = (
        student["params"] * 16
        + teacher["params"] * 4
        + soft["batch_size"] * (student["saved"] + teacher["peak"])
        + test_batch * student["peak"]
    )
    host = (train_images + val) * 3 * size**2 / GIB + a["host_base_gib"]
    return {
        **request(gpu / GIB + a["cuda_context_gib"], host, seconds / 60),
        "case": f"{model}, IPC {ipc}, {epochs} epochs, soft labels",
    }


def teacher_estimate(config, dataset):
    """The request of the teacher rule's job: teacher.architecture trained on the whole train split with
    hard labels for teacher.epochs (``vlcp.config.teacher_settings``)."""
    from vlcp.config import teacher_settings

    classes, train, val = dataset
    a = ASSUMED
    t = teacher_settings(config, classes)
    c = soft_label_costs(config["teacher"]["architecture"], classes, t["input_size"])
    tests = t["epochs"] // t["test_every"] + 1
    seconds = (t["epochs"] * train * 3 * c["flops"] + tests * val * c["flops"]) / a["small_flops"]
    test_batch = min(config["execution"]["evaluate"]["test_batch_size"], val)
    gpu = c["params"] * 16 + t["batch_size"] * c["saved"] + test_batch * c["peak"]
    host = (train + val) * 3 * t["input_size"] ** 2 / GIB + a["host_base_gib"]
    return {
        **request(gpu / GIB + a["cuda_context_gib"], host, seconds / 60),
        "case": f"{config['teacher']['architecture']}, {t['epochs']} epochs",
    }


def table(names):
    """A markdown table of every preset in ``names``: one row per GPU rule."""
    lines = [
        "| preset | rule | per | GPU memory | host memory | run time (estimate) | asks: mem_mb, runtime |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        config = load_preset(name)
        for rule, r in size_preset(config, published_size(config)).items():
            per = {
                "caption": "class",
                "encode": "class",
                "synthesize": "class (largest IPC)",
                "finetune": "job",
                "evaluate": f"job ({r.get('case', '')})",
            }[rule]
            lines.append(
                f"| {name} | {rule} | {per} | {r['gpu_gib']:.1f} GiB | {r['host_gib']:.1f} GiB | "
                f"{format_minutes(r['minutes'])} | {r['mem_mb']}, {r['runtime']} |"
            )
    return "\n".join(lines)


def format_minutes(minutes):
    if minutes < 1:
        return f"{minutes * 60:.0f} s"
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def resources_block(name):
    """The `resources:` YAML of a preset, from its sizing: memory and run time of each GPU rule."""
    config = load_preset(name)
    sizes = size_preset(config, published_size(config))
    lines = [
        f'# GPU rules sized by `python -m vlcp.sizing {name}` (README, "Sizing"); run times are per class',
        "# for caption, encode and synthesize, per job for finetune and evaluate.",
        "resources:",
    ]
    for rule, r in sizes.items():
        lines.append(f"  {rule}: {{mem_mb: {r['mem_mb']}, runtime: {r['runtime']}}}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", default=TABLE_PRESETS)
    parser.add_argument("--resources", action="store_true", help="print each preset's resources block instead")
    args = parser.parse_args(argv)
    if args.resources:
        for name in args.presets:
            print(f"# {name}\n{resources_block(name)}\n")
        return
    print(table(args.presets))


if __name__ == "__main__":
    main()

"""Loading the checkpoints every GPU stage uses, and choosing device and precision.

One place loads Stable Diffusion pipelines, LLaVA-style captioners and the
text generator of the GPT-generated-sentences strategy, for the
real checkpoints and the tiny ones alike: safetensors weights only, never
remote code, ``HF_HUB_OFFLINE`` honoured, and a clear message when a model
cannot be found.
"""

import json
import os
import re
import sys
from pathlib import Path

import torch

from vlcp.errors import VlcpError

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class ModelNotFoundError(VlcpError, OSError):
    """A model id or folder that could not be loaded; the message says what to do."""


def device():
    """The device the stage runs on: the first visible GPU, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def native_bf16():
    """Whether the GPU computes in bfloat16 itself (Ampere and newer), not by emulation (V100, T4)."""
    return torch.cuda.is_bf16_supported(including_emulation=False)


def dtype_for(name, on, auto_bf16=True):
    """Torch dtype for a config value. 'auto' on a GPU is bfloat16 where the GPU has it natively and
    ``auto_bf16`` is set, else float16; on the CPU every value is float32."""
    if name != "auto":
        if on.type == "cpu" and name != "float32":
            return torch.float32  # half precision on the CPU is slow and partly unsupported
        return DTYPES[name]
    if on.type == "cuda":
        return torch.bfloat16 if auto_bf16 and native_bf16() else torch.float16
    return torch.float32


# <name>[.<variant>][-00001-of-00002].safetensors, the weight files diffusers and transformers write
WEIGHT_FILE = re.compile(r"^[^.]+?(?:\.(?P<variant>[A-Za-z0-9_]+))?(?:-\d+-of-\d+)?\.(?:safetensors|bin)$")


def weights_variant(name, variant=None):
    """The weights variant to load: ``variant`` when given; else, for a local folder whose weight
    files all carry one variant (``*.fp16.safetensors``, a common download), that variant."""
    if variant or not Path(name).expanduser().is_dir():
        return variant
    found = set()
    for path in Path(name).expanduser().rglob("*"):
        match = WEIGHT_FILE.match(path.name)
        if match:
            found.add(match["variant"])
    return found.pop() if len(found) == 1 else None


def load_error(name, err):
    """Whether a loader's error means the model is not there (or not a checkpoint): any OSError (missing
    file, hub id not cached), and a ValueError only for a local folder, where diffusers and transformers
    raise it for a missing or mismatched component. A ValueError for anything else is a defect and keeps
    its traceback."""
    return isinstance(err, OSError) or Path(name).expanduser().exists()


def _not_found(name, config_key, err):
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    path_like = name.startswith(("/", ".", "~")) or name.count("/") > 1
    if Path(name).exists():
        looked = f"the folder {name}, which does not hold a loadable checkpoint"
    elif path_like:
        looked = f"a local folder {Path(name).expanduser().resolve()}, which does not exist"
    else:
        looked = f"a local folder {Path(name).resolve()} (not there) and for the hub id {name!r} in the local cache"
    hint = (
        f"Set {config_key} in the config to a local folder that holds the checkpoint "
        "(downloaded once, e.g. with `hf download <id> --local-dir <folder>` on a machine with internet)"
    )
    mode = " HF_HUB_OFFLINE is set, so the hub was not asked." if offline else ""
    return ModelNotFoundError(
        f"could not load {config_key} = {name!r}: looked for {looked}.{mode} {hint}. Cause: {type(err).__name__}: {err}"
    )


def load_stable_diffusion(
    name,
    config_key="models.diffusion",
    dtype=torch.float32,
    img2img=False,
    variant=None,
    safety_checker=False,
    **components,
):
    """A ``StableDiffusionPipeline`` (or its img2img variant) from a hub id or folder; ``variant`` picks
    weight files such as ``*.fp16.safetensors`` (see ``weights_variant``). Without its safety checker
    unless ``safety_checker`` (D4M's way: the checkpoint's checker blacks out the images it flags)."""
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

    pipeline_class = StableDiffusionImg2ImgPipeline if img2img else StableDiffusionPipeline
    checker = {} if safety_checker else {"safety_checker": None, "requires_safety_checker": False}
    try:
        pipe = pipeline_class.from_pretrained(
            name, dtype=dtype, variant=weights_variant(name, variant), use_safetensors=True, **checker, **components
        )
    except (OSError, ValueError) as err:
        if not load_error(name, err):
            raise
        raise _not_found(name, config_key, err) from None
    if safety_checker and (pipe.safety_checker is None or pipe.feature_extractor is None):
        raise ModelNotFoundError(
            f"{config_key} = {name!r} has no safety_checker and feature_extractor, which the synthesis's "
            "safety_checker setting asks for; set it to false, or use a checkpoint that ships them "
            "(stable-diffusion-v1-5 does)."
        )
    return pipe


SAFETY_PARTS = ("safety_checker", "feature_extractor")


def safety_checker_gaps(name):
    """What a Stable Diffusion checkpoint (a folder, or a hub id in the local cache) lacks of a safety
    checker: the parts its model_index.json does not name, and, for a folder, the part folders missing
    (``part/``). None when its model_index.json cannot be found."""
    folder = Path(name).expanduser()
    index = folder / "model_index.json"
    if not index.is_file():
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "model_index.json")
        if not isinstance(cached, str):
            return None
        index, folder = Path(cached), None
    named = json.loads(index.read_text())
    gaps = [part for part in SAFETY_PARTS if (named.get(part) or [None])[0] is None]
    return gaps + ([f"{part}/" for part in SAFETY_PARTS if not (folder / part).is_dir()] if folder else [])


def load_vae(name, config_key="models.diffusion", dtype=torch.float32, variant=None):
    """Only the VAE of a Stable Diffusion checkpoint (its ``vae/`` subfolder)."""
    from diffusers import AutoencoderKL

    try:
        return AutoencoderKL.from_pretrained(
            name, subfolder="vae", dtype=dtype, variant=weights_variant(name, variant), use_safetensors=True
        )
    except (OSError, ValueError) as err:
        if not load_error(name, err):
            raise
        raise _not_found(name, config_key, err) from None


def load_for_generation(name, config_key, model_class, preprocessor_class, dtype=torch.float32, variant=None, on=None):
    """A transformers model and its processor or tokenizer, the tokenizer padding on the left (for batched
    generation) with a pad token. With ``on``, the weights are read straight onto that device in ``dtype``
    (no host copy of a 14 GB model first)."""
    placement = {"device_map": str(on)} if on is not None else {}
    try:
        preprocessor = preprocessor_class.from_pretrained(name)
        model = model_class.from_pretrained(
            name, dtype=dtype, variant=weights_variant(name, variant), use_safetensors=True, **placement
        )
    except (OSError, ValueError) as err:
        if not load_error(name, err):
            raise
        raise _not_found(name, config_key, err) from None
    tokenizer = getattr(preprocessor, "tokenizer", preprocessor)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), preprocessor


def load_captioner(name, config_key="models.captioner", dtype=torch.float32, variant=None, on=None):
    """An image-text-to-text model and its processor, on device ``on`` when given."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model, processor = load_for_generation(
        name, config_key, AutoModelForImageTextToText, AutoProcessor, dtype, variant, on
    )
    fill_patch_size(processor, model.config, name)
    return model, processor


def fill_patch_size(processor, model_config, name):
    """An older llava-hf download's processor_config.json has no ``patch_size`` (nor the two keys saved
    beside it); transformers' LlavaProcessor then fails at the first batch, when it counts a picture's image
    tokens. The values are those the processor is saved with today, read from the model's config.json: the
    vision tower's patch, the model's feature selection, and the CLS token a CLIP tower adds."""
    if not hasattr(processor, "patch_size") or processor.patch_size is not None:
        return
    vision = getattr(model_config, "vision_config", None)
    patch = getattr(vision, "patch_size", None)
    if patch is None:
        raise ModelNotFoundError(
            f"{name}: its processor_config.json has no patch_size, and its config.json's vision_config names "
            'none either; add "patch_size": 14 (LLaVA-1.5\'s CLIP ViT-L/14) to processor_config.json.'
        )
    processor.patch_size = patch
    processor.vision_feature_select_strategy = getattr(model_config, "vision_feature_select_strategy", None)
    processor.num_additional_image_tokens = 1 if getattr(vision, "model_type", "") == "clip_vision_model" else 0
    print(
        f"{name}: processor_config.json has no patch_size; using the vision tower's ({patch}), "
        f"vision_feature_select_strategy {processor.vision_feature_select_strategy!r} and "
        f"{processor.num_additional_image_tokens} additional image token(s), from its config.json",
        file=sys.stderr,
    )


def load_text_generator(name, config_key="models.text_generator", dtype=torch.float32, variant=None):
    """A causal language model and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return load_for_generation(name, config_key, AutoModelForCausalLM, AutoTokenizer, dtype, variant)

"""Stage 2, caption: one description per train image of a class, from a LLaVA-style model.

The prompt and the images are prepared as the authors' LLaVA ``model_vqa.py``
prepares them for LLaVA-1.5: the llava_v1 conversation with its system line,
and each image padded to a square of the processor's mean colour. Generation is
batched with left padding and greedy by default, so a rerun gives the same
captions. Finished batches go to a side file as they complete; a job killed
part-way continues from there, and the declared output is written once,
atomically, at the end.
"""

import argparse
import functools
import hashlib
import json
import re
import sys
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from vlcp import contract, provenance
from vlcp.cli import run
from vlcp.images import load_rgb
from vlcp.models import device, dtype_for, load_captioner
from vlcp.parallel import thread_map
from vlcp.parts import add_part_option, each_class
from vlcp.seeds import derive
from vlcp.settings import add_settings

ROLE_PREFIX = re.compile(r"^\s*(assistant|gpt)\s*:\s*", re.IGNORECASE)


# LLaVA's conversation template "llava_v1" (llava/conversation.py), which the authors' model_vqa.py uses
# for LLaVA-1.5: the system line, then "USER: <image>\n{question} ASSISTANT:", separated by spaces.
LLAVA_V1_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
CONVERSATIONS = ("llava_v1", "chat_template")


def build_prompt(processor, template, label, conversation="llava_v1"):
    """The prompt for one image, the template with ``{label}`` filled in: in LLaVA's llava_v1 format (the
    authors'), or through the processor's own chat template (for other image-text-to-text models)."""
    question = template.replace("{label}", label)
    if conversation == "llava_v1":
        image_token = getattr(processor, "image_token", "<image>")
        return f"{LLAVA_V1_SYSTEM} USER: {image_token}\n{question} ASSISTANT:"
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


def pad_to_square(img, fill):
    """The image centred on a square canvas of ``fill`` colour (LLaVA's ``expand2square``, which
    model_vqa.py applies with the image processor's mean colour before its resize and crop), so the
    whole image is seen rather than its centre crop."""
    side = max(img.size)
    if img.width == img.height:
        return img
    canvas = Image.new(img.mode, (side, side), fill)
    canvas.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return canvas


def mean_colour(processor):
    """The image processor's mean as an 8-bit RGB colour, as LLaVA pads with."""
    return tuple(int(x * 255) for x in processor.image_processor.image_mean)


def clean_caption(text):
    """Collapse whitespace and drop a leading role tag that some chat models echo."""
    return ROLE_PREFIX.sub("", " ".join(text.split()))


@torch.inference_mode()
def caption_batch(model, processor, images, prompt, generation):
    """Captions of a list of PIL images that share one prompt; only newly generated tokens are decoded."""
    inputs = processor(images=images, text=[prompt] * len(images), return_tensors="pt", padding=True)
    inputs = inputs.to(model.device)
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    output = model.generate(**inputs, **generation)
    new_tokens = output[:, inputs["input_ids"].shape[1] :]
    return [clean_caption(t) for t in processor.batch_decode(new_tokens, skip_special_tokens=True)]


def generation_kwargs(max_new_tokens, do_sample, temperature):
    kwargs = {"max_new_tokens": max_new_tokens, "do_sample": do_sample}
    if do_sample:
        kwargs["temperature"] = temperature
    return kwargs


class Progress:
    """The side file of finished batches: a settings line, then one JSON line per batch."""

    def __init__(self, path, settings):
        self.path = Path(path)
        self.settings = settings

    def load(self):
        """Rows of the batches finished under the same settings; a torn last line is dropped."""
        if not self.path.exists():
            return []
        lines = self.path.read_text().splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            header = {}
        if header.get("settings") != self.settings:
            return []
        rows = []
        for line in lines[1:]:
            try:
                rows.extend(json.loads(line)["rows"])
            except (json.JSONDecodeError, KeyError):
                break
        return rows

    def start(self, rows):
        """Rewrite the side file with the settings and the rows kept, then append from there."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w") as handle:
            handle.write(json.dumps({"settings": self.settings}) + "\n")
            if rows:
                handle.write(json.dumps({"rows": rows}) + "\n")

    def append(self, rows):
        with self.path.open("a") as handle:
            handle.write(json.dumps({"rows": rows}, ensure_ascii=False) + "\n")
            handle.flush()


def caption_class(
    records,
    root,
    model_name,
    template,
    batch_size,
    generation,
    seed,
    dtype,
    progress_path,
    out_path,
    load=load_captioner,
    conversation="llava_v1",
    pad=True,
):
    """Caption every indexed image of one class, resuming from ``progress_path``; write ``out_path``.

    ``load(model_name, dtype=...)`` gives (model, processor); pass a cached one to caption many classes.
    ``conversation`` and ``pad`` (pad each image to a square of the mean colour) are as in LLaVA's
    model_vqa.py by default.
    """
    images = [r["image"] for r in records]
    label = records[0]["label"]
    settings = {
        "model": provenance.model_identity(model_name),
        "prompt": template,
        "label": label,
        "generation": generation,
        "batch_size": batch_size,
        "seed": seed,
        "conversation": conversation,
        "pad": pad,
        "images": hashlib.sha256("\n".join(images).encode()).hexdigest(),
    }
    progress = Progress(progress_path, settings)
    done = progress.load()
    progress.start(done)
    if done:
        print(f"resuming: {len(done)} of {len(images)} images already captioned", file=sys.stderr)
    on = device()
    model, processor = load(model_name, dtype=dtype_for(dtype, on))
    model.to(on)
    prompt = build_prompt(processor, template, label, conversation)
    fill = mean_colour(processor)

    def image(name):
        img = load_rgb(Path(root) / name)
        return pad_to_square(img, fill) if pad else img

    rows = list(done)
    starts = range(len(done), len(images), batch_size)
    for start in tqdm(starts, desc=f"caption {records[0]['class']}", unit="batch", file=sys.stderr):
        names = images[start : start + batch_size]
        if generation.get("do_sample"):
            torch.manual_seed(derive("caption", seed, start))
        captions = caption_batch(model, processor, thread_map(image, names), prompt, generation)
        batch = [{"image": n, "caption": c} for n, c in zip(names, captions)]
        progress.append(batch)
        rows.extend(batch)
    empty = [r["image"] for r in rows if not r["caption"]]
    if empty:
        print(f"warning: {len(empty)} empty caption(s), kept as empty strings: {empty[:5]}", file=sys.stderr)
    contract.write_captions(out_path, rows)
    progress.path.unlink()
    print(f"{len(rows)} captions written ({len(rows) - len(done)} new, {len(empty)} empty)", file=sys.stderr)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", nargs="+", required=True, type=Path, help="per class: train index (JSON lines)")
    parser.add_argument("--root", required=True, type=Path, help="dataset root the index paths are relative to")
    parser.add_argument("--model", required=True, help="hub id or folder of the captioner")
    parser.add_argument("--variant", help="weights variant of the model files, e.g. fp16 (default: detected)")
    parser.add_argument(
        "--progress",
        nargs="+",
        required=True,
        type=Path,
        help="per class: side file of finished batches (for resuming)",
    )
    parser.add_argument("--out", nargs="+", required=True, type=Path, help="per class: captions (JSON lines)")
    add_settings(parser, "caption")
    add_part_option(parser)
    args = parser.parse_args(argv)
    generation = generation_kwargs(args.max_new_tokens, args.do_sample, args.temperature)
    load = functools.cache(
        functools.partial(load_captioner, variant=args.variant)
    )  # one model for all classes of the job
    for one in each_class(args, ("index", "progress", "out"), outputs=("out",)):
        caption_class(
            contract.read_index(one.index),
            one.root,
            one.model,
            one.prompt,
            one.batch_size,
            generation,
            one.seed,
            one.dtype,
            one.progress,
            one.out,
            load,
            one.conversation,
            one.pad_to_square,
        )
        provenance.record(one.out, "caption", vars(one), models=[one.model])


if __name__ == "__main__":
    run(main)

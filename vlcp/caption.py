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
import shutil
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
from vlcp.parts import each_class
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
    """The finished batches of a class, one JSON line each, in the job's work folder."""

    def __init__(self, path):
        self.path = Path(path)

    def load(self):
        """Rows of the finished batches; a torn last line is dropped."""
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.extend(json.loads(line)["rows"])
            except (json.JSONDecodeError, KeyError):
                break
        return rows

    def start(self, rows):
        """Rewrite the file with the rows kept, then append from there."""
        with self.path.open("w") as handle:
            if rows:
                handle.write(json.dumps({"rows": rows}, ensure_ascii=False) + "\n")

    def append(self, rows):
        with self.path.open("a") as handle:
            handle.write(json.dumps({"rows": rows}, ensure_ascii=False) + "\n")
            handle.flush()


def caption_class(records, settings, work, out_path, load=load_captioner):
    """Caption every indexed image of one class, resuming from the work folder ``work``; write ``out_path``.

    ``settings`` are the stage's parsed options by name (root, model, prompt, batch_size, max_new_tokens,
    do_sample, temperature, seed, dtype, conversation, pad_to_square). ``load(model, dtype=...)`` gives
    (model, processor); pass a cached one to caption many classes.
    """
    s = settings
    generation = generation_kwargs(s["max_new_tokens"], s["do_sample"], s["temperature"])
    images = [r["image"] for r in records]
    label = records[0]["label"]
    identity = {
        "model": provenance.model_identity(s["model"]),
        "prompt": s["prompt"],
        "label": label,
        "generation": generation,
        "batch_size": s["batch_size"],
        "seed": s["seed"],
        "conversation": s["conversation"],
        "pad": s["pad_to_square"],
        "images": hashlib.sha256("\n".join(images).encode()).hexdigest(),
    }
    progress = Progress(Path(work) / "batches.jsonl")
    done = progress.load() if provenance.claim_work(work, identity) else []
    progress.start(done)
    if done:
        print(f"resuming: {len(done)} of {len(images)} images already captioned", file=sys.stderr)
    on = device()
    model, processor = load(s["model"], dtype=dtype_for(s["dtype"], on), on=on)
    prompt = build_prompt(processor, s["prompt"], label, s["conversation"])
    fill = mean_colour(processor)

    def image(name):
        img = load_rgb(Path(s["root"]) / name)
        return pad_to_square(img, fill) if s["pad_to_square"] else img

    rows = list(done)
    size = s["batch_size"]
    for start in tqdm(
        range(len(done), len(images), size), desc=f"caption {records[0]['class']}", unit="batch", file=sys.stderr
    ):
        names = images[start : start + size]
        if generation.get("do_sample"):
            torch.manual_seed(derive("caption", s["seed"], start))
        captions = caption_batch(model, processor, thread_map(image, names), prompt, generation)
        batch = [{"image": n, "caption": c} for n, c in zip(names, captions)]
        progress.append(batch)
        rows.extend(batch)
    empty = [r["image"] for r in rows if not r["caption"]]
    if empty:
        print(f"warning: {len(empty)} empty caption(s), kept as empty strings: {empty[:5]}", file=sys.stderr)
    contract.write_captions(out_path, rows)
    shutil.rmtree(work)
    print(f"{len(rows)} captions written ({len(rows) - len(done)} new, {len(empty)} empty)", file=sys.stderr)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", nargs="+", required=True, type=Path, help="per class: train index (JSON lines)")
    parser.add_argument("--root", required=True, type=Path, help="dataset root the index paths are relative to")
    parser.add_argument("--model", required=True, help="hub id or folder of the captioner")
    parser.add_argument("--variant", help="weights variant of the model files, e.g. fp16 (default: detected)")
    parser.add_argument(
        "--work", nargs="+", required=True, type=Path, help="per class: folder of finished batches, for resuming"
    )
    parser.add_argument("--out", nargs="+", required=True, type=Path, help="per class: captions (JSON lines)")
    add_settings(parser, "caption")
    args = parser.parse_args(argv)
    load = functools.cache(functools.partial(load_captioner, variant=args.variant))  # one model for the job
    for one in each_class(args, ("index", "work", "out")):
        caption_class(contract.read_index(one.index), vars(one), one.work, one.out, load)
        provenance.record(one.out, "caption", vars(one), models=[one.model])


if __name__ == "__main__":
    run(main)

"""Stage 7, synthesize: one image per cluster from its image prototype and text prototype.

Stock diffusers img2img: each k-means centre is passed as a 4-channel latent
``image`` (the VAE encode is skipped), noised to ``strength`` of the schedule
and denoised under the text prototype with classifier-free guidance, the prompt
and the negative prompt encoded as the authors' ``get_pipeline_embeds`` does.
Every image has its own generator seeded from (class, cluster, seed), and
prompts are batched only with prompts of the same encoded length, so any one image
regenerated alone has the same pixels. Finished images are kept in a work
folder, so a killed job resumes; the class folder appears whole at the end.

With ``--candidates`` K > 1 (beyond the paper) each prototype gets K images,
each with its own generator (``image_seed``), and a teacher keeps the one it
gives the highest probability of the class (``choose``); the scores go into
the class folder's provenance.
"""

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from vlcp import contract, provenance
from vlcp.atomic import atomic_dir, atomic_write
from vlcp.cli import run
from vlcp.models import device, dtype_for, load_stable_diffusion
from vlcp.parts import each_class
from vlcp.seeds import derive
from vlcp.settings import add_settings, section

SCHEDULERS = {
    "pndm": ("PNDMScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "dpmsolver++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "lms": ("LMSDiscreteScheduler", {}),
}


def denoiser_passes(settings):
    """U-Net evaluations per image and step for ``settings`` (the config's synthesize section): two under
    classifier-free guidance, which diffusers applies when guidance_scale > 1."""
    return 2 if settings["guidance_scale"] > 1 else 1


def image_seed(cls, cluster, seed, candidate=0):
    """The generator seed of one image, from (class, cluster, seed) alone, and of its candidate ``candidate``
    (synthesize.candidates) from (class, cluster, seed, candidate): candidate 0 is the image a set of one
    candidate per prototype holds."""
    return derive(cls, cluster, seed) if candidate == 0 else derive(cls, cluster, seed, candidate)


def candidate_items(cls, clusters, seed, candidates):
    """(cluster, candidate, seed) of every image a job makes for one class, cluster-major: what the
    synthesis of a set and ``vlcp regenerate`` both batch, in the same order."""
    return [(k, c, image_seed(cls, k, seed, c)) for k in range(clusters) for c in range(candidates)]


def candidate_inputs(cls, seed, centres, prototypes, candidates):
    """``(items, centres, prompts, seeds)`` of every image of one class (``candidate_items``' order): each
    prototype's centre and prompt repeated for its candidates, and each image's seed."""
    items = candidate_items(cls, len(prototypes), seed, candidates)
    prompts = [prototypes[k]["prompt"] for k, _, _ in items]
    return items, centres.repeat_interleave(candidates, 0), prompts, [s for _, _, s in items]


def work_name(cluster, candidate, candidates):
    """The file of one image in the job's work folder: <cluster>.png, or <cluster>-<candidate>.png."""
    return f"{cluster}.png" if candidates == 1 else f"{cluster}-{candidate}.png"


@torch.inference_mode()
def class_probabilities(teacher, paths, label, input_size):
    """The teacher's softmax probability of class ``label`` for each image file, the image put through the
    soft-label protocol's test transform (vlcp.rded.test_decoding) and normalised as its students' inputs."""
    from vlcp import augment
    from vlcp.rded import test_tensor

    on = next(teacher.parameters()).device
    images = test_tensor(paths, input_size).to(on)
    logits = teacher(augment.normalize(images.float() / 255)).float()
    return torch.softmax(logits, 1)[:, label].cpu().tolist()


def choose(scores):
    """The kept candidate of one prototype: the highest score, ties to the lower candidate index."""
    return min(range(len(scores)), key=lambda c: (-scores[c], c))


PROMPT_ENCODINGS = ("authors", "chunk", "truncate")


def chunk_ids(tokenizer, text, chunks=None, truncate=False):
    """Token ids of ``text`` as rows of ``model_max_length`` (BOS, up to 75 tokens, EOS, padding).

    Long texts are split into several rows unless ``truncate``; ``chunks`` pads with rows of padding to
    that many rows.
    """
    width = tokenizer.model_max_length - 2
    ids = tokenizer(text, add_special_tokens=False, truncation=False).input_ids
    if truncate:
        ids = ids[:width]
    count = max(1, -(-len(ids) // width))
    if chunks is not None:
        count = max(count, chunks)
    rows = []
    for c in range(count):
        piece = ids[c * width : (c + 1) * width]
        row = [tokenizer.bos_token_id, *piece, tokenizer.eos_token_id]
        rows.append(row + [tokenizer.pad_token_id] * (tokenizer.model_max_length - len(row)))
    return torch.tensor(rows)


def authors_ids(tokenizer, prompt, negative_prompt):
    """Token ids of prompt and negative prompt as the authors' ``get_pipeline_embeds`` (gen_syn_image.py)
    makes them: each tokenized whole, one BOS and one EOS, no truncation; the shorter padded to the
    longer's length. Tensors (1, n + 2) each.

    The authors decide which is longer by counting words and pad only that way; where the word count
    and the token count disagree their pipeline call fails on unequal shapes. Padding the shorter in
    tokens gives their ids wherever their code runs.
    """
    lengths = [len(tokenizer(text, truncation=False, verbose=False).input_ids) for text in (prompt, negative_prompt)]
    longest = max(lengths)
    return [
        torch.tensor(
            [tokenizer(text, truncation=False, padding="max_length", max_length=longest, verbose=False).input_ids]
        )
        for text in (prompt, negative_prompt)
    ]


@torch.inference_mode()
def encode_slices(text_encoder, ids, width):
    """Text-encoder states of a (1, n) id row cut into slices of ``width`` ids, each encoded alone (no
    BOS or EOS added to a slice), concatenated along the sequence: (1, n, D)."""
    ids = ids.to(text_encoder.device)
    return torch.cat(
        [text_encoder(ids[:, i : i + width], return_dict=False)[0] for i in range(0, ids.shape[1], width)], 1
    )


@torch.inference_mode()
def encode_prompt(pipe, text, chunks=None, truncate=False):
    """Text-encoder states of ``text`` in 77-id rows with BOS and EOS each, concatenated along the
    sequence: (1, 77 * chunks, D)."""
    ids = chunk_ids(pipe.tokenizer, text, chunks, truncate).to(pipe.text_encoder.device)
    states = pipe.text_encoder(ids, return_dict=False)[0]
    return states.reshape(1, -1, states.shape[-1])


def prompt_embeddings(pipe, prompt, negative_prompt, encoding="authors"):
    """(prompt_states, negative_states) of equal shape (1, L, D) for the pipeline's ``prompt_embeds`` and
    ``negative_prompt_embeds``. ``encoding``: 'authors' (``get_pipeline_embeds`` of gen_syn_image.py: L is
    the longer tokenization with its BOS and EOS, not padded to 77; past 77 ids the row is cut into 77-id
    slices without BOS or EOS of their own), 'chunk' (each 75-token chunk wrapped in BOS and EOS and
    padded to 77, the negative prompt padded to as many chunks), or 'truncate' (one row of 77, as
    diffusers encodes a prompt)."""
    if encoding == "authors":
        width = pipe.tokenizer.model_max_length
        ids, negative_ids = authors_ids(pipe.tokenizer, prompt, negative_prompt)
        return encode_slices(pipe.text_encoder, ids, width), encode_slices(pipe.text_encoder, negative_ids, width)
    if encoding not in PROMPT_ENCODINGS:
        raise ValueError(f"unknown prompt encoding {encoding!r}; choose one of {PROMPT_ENCODINGS}")
    truncate = encoding == "truncate"
    states = encode_prompt(pipe, prompt, truncate=truncate)
    chunks = states.shape[1] // pipe.tokenizer.model_max_length
    return states, encode_prompt(pipe, negative_prompt, chunks=chunks, truncate=truncate)


def set_scheduler(pipe, name):
    """Replace the checkpoint's sampler by one named in SCHEDULERS ('checkpoint' keeps it)."""
    if name == "checkpoint":
        return
    import diffusers

    cls_name, extra = SCHEDULERS[name]
    pipe.scheduler = getattr(diffusers, cls_name).from_config(pipe.scheduler.config, **extra)


def synthesize(pipe, centres, prompts, seeds, settings, done=None, on_image=None, wanted=None):
    """Generate one PIL image per centre; ``done`` maps already finished cluster -> image.

    ``settings`` are the stage's by name (its parsed options, or what a provenance record holds, for
    ``vlcp regenerate``): negative_prompt, strength, guidance_scale, num_inference_steps, batch_size and
    prompt_encoding.

    Prompts are grouped by the length of their encoding (``prompt_embeddings``), so a batch never pads
    a prompt beyond its own length; batches whose images are all in ``done`` are skipped, and
    ``on_image(cluster, image)`` is called as each new image finishes. ``wanted`` (a set of clusters)
    makes only the batches that hold one of them. Returns the images in cluster order (None where not made).
    """
    done = dict(done or {})
    on = pipe.unet.device
    dtype = pipe.unet.dtype
    s = settings
    embeds = [prompt_embeddings(pipe, p, s["negative_prompt"], s["prompt_encoding"]) for p in prompts]
    groups = {}
    for k in range(len(prompts)):
        groups.setdefault(embeds[k][0].shape[1], []).append(k)
    size = s["batch_size"]
    batches = [ks[i : i + size] for _, ks in sorted(groups.items()) for i in range(0, len(ks), size)]
    # A resumed job redoes a partly finished batch whole: float kernels may round differently at
    # another batch size, and the images must equal those of an uninterrupted run.
    batches = [b for b in batches if not all(k in done for k in b)]
    if wanted is not None:
        batches = [b for b in batches if wanted & set(b)]
    for batch in tqdm(batches, desc="synthesize", unit="batch", file=sys.stderr):
        images = pipe(
            image=centres[batch].to(on, dtype),
            prompt_embeds=torch.cat([embeds[k][0] for k in batch]).to(dtype),
            negative_prompt_embeds=torch.cat([embeds[k][1] for k in batch]).to(dtype),
            strength=s["strength"],
            guidance_scale=s["guidance_scale"],
            num_inference_steps=s["num_inference_steps"],
            generator=[torch.Generator(device="cpu").manual_seed(seeds[k]) for k in batch],
            output_type="pil",
        )
        flagged = [k for k, hit in zip(batch, images.nsfw_content_detected or []) if hit]
        if flagged:
            print(f"the safety checker blacked out the images of clusters {flagged}", file=sys.stderr)
        for k, img in zip(batch, images.images):
            if k in done:
                continue
            done[k] = img
            if on_image is not None:
                on_image(k, img)
    return [done.get(k) for k in range(len(prompts))]


def resize_for_evaluation(img, size):
    """Resize a square generated image to the evaluation side as the authors' gen_syn_image.py does
    (``images[0].resize((256, 256))``: Pillow's default filter for RGB, bicubic)."""
    return img if img.size == (size, size) else img.resize((size, size), Image.Resampling.BICUBIC)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="fine-tuned pipeline folder, or D4M's base model")
    parser.add_argument("--variant", help="weights variant of the model files, e.g. fp16 (default: detected)")
    parser.add_argument("--clusters", nargs="+", required=True, type=Path, help="per class: clusters JSON")
    parser.add_argument(
        "--centres", nargs="+", required=True, type=Path, help="per class: the clusters' centres (safetensors)"
    )
    parser.add_argument("--prototypes", nargs="+", required=True, type=Path, help="per class: prototypes JSON")
    parser.add_argument("--class", dest="cls", nargs="+", required=True, help="per class: class folder name")
    parser.add_argument("--seed", type=int, required=True)
    # synthesize.candidates lists the counts of a run's sets; a job makes one set, of one count
    candidates = {"type": int, "default": 1, "help": "images made per prototype; the teacher keeps one (default 1)"}
    add_settings(parser, "synthesize", candidates=candidates)
    parser.add_argument("--size", type=int, required=True, help="side of the saved images (evaluation size)")
    parser.add_argument(
        "--work", nargs="+", required=True, type=Path, help="per class: folder of finished images, for resuming"
    )
    parser.add_argument("--out", nargs="+", required=True, type=Path, help="per class: output folder of <k>.png")
    parser.add_argument("--teacher", type=Path, help="with --candidates > 1: the teacher's weights")
    parser.add_argument("--teacher-architecture", help="with --candidates > 1: the teacher's network")
    parser.add_argument("--teacher-input-size", type=int, help="with --candidates > 1: the teacher's input side")
    parser.add_argument("--label", nargs="+", type=int, help="with --candidates > 1, per class: its label index")
    parser.add_argument("--num-classes", type=int, help="with --candidates > 1: the teacher's class count")
    parser.add_argument(
        "--candidates-dir", nargs="+", type=Path, help="per class: where --keep-candidates keeps every candidate"
    )
    args = parser.parse_args(argv)
    if args.candidates > 1:
        missing = [
            flag
            for flag, value in (
                ("--teacher", args.teacher),
                ("--teacher-architecture", args.teacher_architecture),
                ("--teacher-input-size", args.teacher_input_size),
                ("--label", args.label),
                ("--num-classes", args.num_classes),
            )
            if value is None
        ]
        if missing:
            parser.error(
                f"--candidates {args.candidates} scores the candidates with a teacher: give {', '.join(missing)}"
            )
    if args.keep_candidates and args.candidates > 1 and args.candidates_dir is None:
        parser.error("--keep-candidates needs --candidates-dir")
    on = device()
    pipe = load_stable_diffusion(
        args.model,
        dtype=dtype_for(args.dtype, on, auto_bf16=False),
        img2img=True,
        variant=args.variant,
        safety_checker=args.safety_checker,
    ).to(on)
    set_scheduler(pipe, args.scheduler)
    pipe.set_progress_bar_config(disable=True)
    teacher = None
    if args.candidates > 1:
        from vlcp.evaluate import on_device
        from vlcp.rded import load_teacher

        teacher = on_device(
            load_teacher(args.teacher, args.teacher_architecture, args.num_classes, args.teacher_input_size), on
        )
    names = ("clusters", "centres", "prototypes", "cls", "work", "out", "label", "candidates_dir")
    for one in each_class(args, names):
        synthesize_class(pipe, one, teacher)


def synthesize_class(pipe, args, teacher=None):
    """The images of one class, resuming from the finished ones in ``args.work``; with ``args.candidates``
    K > 1, K per prototype, of which ``teacher`` keeps one (``choose``)."""
    clusters, centres = contract.read_clusters(args.clusters, args.centres)
    prototypes = contract.read_prototypes(args.prototypes)
    if len(prototypes) != len(centres):
        raise contract.ContractError(
            f"{args.prototypes} has {len(prototypes)} prompts for {len(centres)} centres in {args.clusters}"
        )
    keep_out = ("work", "out", "candidates_dir", *section("synthesize", execution=True))
    settings = {k: v for k, v in vars(args).items() if k not in keep_out}
    settings.update(
        centres=hashlib.sha256(centres.numpy().tobytes()).hexdigest(),
        prompts=[p["prompt"] for p in prototypes],
        model_files=provenance.model_identity(args.model),
    )
    provenance.claim_work(args.work, json.loads(json.dumps(settings, default=str)))
    K = args.candidates
    items, item_centres, prompts, seeds = candidate_inputs(args.cls, args.seed, centres, prototypes, K)
    files = [args.work / work_name(k, c, K) for k, c, _ in items]
    done = {i: Image.open(path).copy() for i, path in enumerate(files) if path.exists()}
    if done:
        print(f"resuming: {len(done)} of {len(items)} images already made", file=sys.stderr)

    def keep(i, img):
        with atomic_write(files[i], "wb", overwrite=True) as handle:
            resize_for_evaluation(img, args.size).save(handle, format="PNG")

    synthesize(pipe, item_centres, prompts, seeds, vars(args), done, keep)
    chosen, choices = [0] * len(prototypes), None
    if K > 1:
        scores = class_probabilities(teacher, files, args.label, args.teacher_input_size)
        choices = []
        for k in range(len(prototypes)):
            row = [round(p, 6) for p in scores[k * K : (k + 1) * K]]
            chosen[k] = choose(row)
            choices.append({"cluster": k, "chosen": chosen[k], "scores": row})
        if args.keep_candidates:
            if args.candidates_dir.is_dir():  # this set's own candidates of an earlier run: replaced
                print(f"replacing the earlier candidates in {args.candidates_dir}", file=sys.stderr)
                shutil.rmtree(args.candidates_dir)
            with atomic_dir(args.candidates_dir) as tmp:
                for (k, c, _), path in zip(items, files):
                    shutil.copyfile(path, tmp / f"{k}-{c}.png")
    with atomic_dir(args.out) as tmp:
        for k in range(len(prototypes)):
            shutil.copyfile(args.work / work_name(k, chosen[k], K), tmp / f"{k}.png")
        # The device and CPU threads are recorded for `vlcp regenerate`: float sums on the CPU can round
        # differently with another thread count.
        run_on = {"device": pipe.unet.device.type, "threads": torch.get_num_threads()}
        extra = {"choices": choices} if choices is not None else {}
        provenance.record(tmp, "synthesize", {**vars(args), **run_on, **extra}, models=[args.model])
    shutil.rmtree(args.work)
    new = len(items) - len(done)
    print(f"{len(prototypes)} images written to {args.out} ({new} of {len(items)} made now)", file=sys.stderr)


if __name__ == "__main__":
    run(main)

"""The soft-label protocol's teacher: a classifier trained with hard labels on the real train split.

Trained once per run's dataset and architecture by the teacher rule when evaluate.teacher names no file,
with the Minimax protocol's training (vlcp.evaluate: augmentation, SGD, milestones) at the settings of a
whole train set, for teacher.epochs epochs. Saved as safetensors with its val accuracy in the metadata.
"""

import argparse
import sys
from pathlib import Path

import torch

from vlcp import contract, provenance
from vlcp.cli import run
from vlcp.evaluate import add_minimax_settings, minimax_settings, on_device, split_images, train_and_test
from vlcp.models import device
from vlcp.rded import build_network
from vlcp.settings import add_settings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--train-index", nargs="+", required=True, type=Path, help="train index of every class, in label order"
    )
    parser.add_argument(
        "--val-index", nargs="+", required=True, type=Path, help="val index of every class, in label order"
    )
    parser.add_argument("--root", required=True, type=Path, help="dataset root of the index paths")
    add_settings(parser, "teacher")
    add_minimax_settings(parser)
    parser.add_argument("--out", required=True, type=Path, help="the teacher's weights (.safetensors)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    train = [r for path in args.train_index for r in contract.read_index(path)]
    val = [r for path in args.val_index for r in contract.read_index(path)]
    classes = list(dict.fromkeys(r["class"] for r in val))
    label_of = {cls: i for i, cls in enumerate(classes)}
    unknown = sorted({r["class"] for r in train} - set(label_of))
    if unknown:
        raise contract.ContractError(f"train classes {unknown[:5]} have no val images in {args.val_index[0]}")
    on = device()
    print(
        f"training a {args.architecture} teacher on {len(train)} train images; testing on {len(val)}", file=sys.stderr
    )
    train_images = split_images(
        [args.root / r["image"] for r in train], args.input_size, on, args.image_loading, "train split"
    )
    test_images = split_images(
        [args.root / r["image"] for r in val], args.input_size, on, args.image_loading, "val split"
    )
    torch.manual_seed(args.seed)
    model = on_device(build_network(args.architecture, len(classes), args.input_size), on)
    result = train_and_test(
        train_images,
        torch.tensor([label_of[r["class"]] for r in train], device=on),
        test_images,
        torch.tensor([label_of[r["class"]] for r in val], device=on),
        args.architecture,
        len(classes),
        minimax_settings(args),
        args.seed,
        model=model,
    )
    record = {
        "architecture": args.architecture,
        "input_size": args.input_size,
        "classes": classes,
        "val_top1_last": result["top1_last"],
        "val_top1_best": result["top1_best"],
    }
    contract.write_network(args.out, model.state_dict(), record)
    provenance.record(args.out, "teacher", vars(args))
    print(
        f"teacher val top-1 {result['top1_last']:.2f} after the last epoch (best {result['top1_best']:.2f})",
        file=sys.stderr,
    )
    if on.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(on) / 2**30:.2f} GiB", file=sys.stderr)


if __name__ == "__main__":
    run(main)

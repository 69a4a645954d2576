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
from vlcp.evaluate import add_minimax_settings, load_sets, minimax_settings, on_device, split_images, train_and_test
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
    sets = load_sets(args.val_index, args.root, train_index=args.train_index)
    classes = sets.classes
    on = device()
    print(f"training a {args.architecture} teacher on the train split; testing on the val split", file=sys.stderr)
    train_images = split_images(sets.train_paths, args.input_size, on, args.image_loading, "train split")
    test_images = split_images(sets.val_paths, args.input_size, on, args.image_loading, "val split")
    torch.manual_seed(args.seed)
    model = on_device(build_network(args.architecture, len(classes), args.input_size), on)
    result = train_and_test(
        train_images,
        torch.tensor(sets.train_labels, device=on),
        test_images,
        torch.tensor(sets.val_labels, device=on),
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

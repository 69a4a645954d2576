"""Stage 1, index: list the usable images of one class of one split, and the rejected files with reasons."""

import argparse
import os
import sys
from pathlib import Path

from tqdm import tqdm

from vlcp import contract, provenance
from vlcp.cli import run
from vlcp.errors import VlcpError
from vlcp.images import ImageRejected, open_image
from vlcp.labels import label_text
from vlcp.parallel import thread_map
from vlcp.parts import each_class
from vlcp.settings import section

SPLITS = ("train", "val")


def default_min_side():
    """The smallest side an image may have when none is given: config/schema.yaml's dataset.min_image_side
    default (read when asked, not when the module loads)."""
    return section("dataset")["min_image_side"]["default"]


class DatasetError(VlcpError, ValueError):
    """A dataset that cannot be indexed as configured; the message names the folder."""


def is_empty(folder):
    """Whether ``folder`` holds no entry at all (read as far as its first one)."""
    with os.scandir(folder) as entries:
        return next(entries, None) is None


def find_classes(root, configured=()):
    """The class folders to use: ``configured`` in its order, or every folder under train/, sorted.

    Raises DatasetError if a split is missing, a configured class is missing on disk, a train class has
    no val folder, or a class folder is empty.
    """
    root = Path(root)
    for split in SPLITS:
        if not (root / split).is_dir():
            raise DatasetError(
                f"{root / split} is not a folder; dataset.root must hold train/ and val/, one subfolder per class"
            )
    on_disk = sorted(p.name for p in (root / "train").iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = list(configured) or on_disk
    if not classes:
        raise DatasetError(f"{root / 'train'} has no class folders")
    for split in SPLITS:
        missing = [c for c in classes if not (root / split / c).is_dir()]
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            what = "configured in dataset.classes but missing" if configured else "missing"
            raise DatasetError(f"class folder(s) {what} under {root / split}: {shown}")
    for split in SPLITS:
        # one look per class (its first entry), not a scan: every job of a large dataset plans again
        empty = [c for c in classes if is_empty(root / split / c)]
        if empty:
            shown = ", ".join(empty[:10]) + (" ..." if len(empty) > 10 else "")
            raise DatasetError(
                f"class folder(s) with no file under {root / split}: {shown}; put its images there, "
                "or leave the class out (dataset.classes)"
            )
    return classes


def class_files(folder):
    """Every file under ``folder`` (links followed), as sorted paths: the index order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        found.extend(Path(dirpath, name) for name in filenames)
    return sorted(found)


def scan_class(root, split, cls, extensions, max_pixels, progress=False, min_side=None):
    """Check every file of ``root/split/cls``; return (records, rejected) in index order.

    A record is a dict with the image path relative to ``root``, width, height and mode; a
    rejected entry is (path relative to ``root``, reason). Every file is fully decoded, so
    truncated data is caught here rather than mid-way through a GPU stage; an image whose shorter side is
    below ``min_side`` pixels (default: the schema's, ``default_min_side``) is rejected.
    """
    root = Path(root)
    min_side = default_min_side() if min_side is None else min_side
    suffixes = {e.lower() for e in extensions}
    files = class_files(root / split / cls)
    bar = tqdm(total=len(files), desc=f"index {split}/{cls}", unit="img", disable=not progress, file=sys.stderr)

    def check(path):
        rel = path.relative_to(root).as_posix()
        try:
            if path.suffix.lower() not in suffixes:
                return rel, f"not an image extension ({path.suffix or 'none'}); see dataset.image_extensions"
            if path.is_file() and path.stat().st_size == 0:
                raise ImageRejected("empty file (zero bytes)")
            img = open_image(path, max_pixels)
            if min(img.size) < min_side:
                raise ImageRejected(f"{img.width} x {img.height} px, smaller than dataset.min_image_side = {min_side}")
        except ImageRejected as err:
            return rel, str(err)
        finally:
            bar.update(1)
        return {"image": rel, "width": img.width, "height": img.height, "mode": img.mode}

    records, rejected = [], []
    for result in thread_map(check, files):
        (records if isinstance(result, dict) else rejected).append(result)
    bar.close()
    return records, rejected


def index_class(root, split, cls, label, extensions, max_pixels, progress=False, min_side=None):
    """``scan_class`` plus the class and label text on each record; a class with no usable image is an error."""
    records, rejected = scan_class(root, split, cls, extensions, max_pixels, progress, min_side)
    if not records:
        reasons = "; ".join(f"{p}: {r}" for p, r in rejected[:5]) or "the folder is empty"
        raise DatasetError(
            f"class {cls!r} has no usable image in {Path(root) / split / cls} ({reasons}). "
            "Add images to it, or leave it out of dataset.classes."
        )
    for record in records:
        record.update({"class": cls, "label": label})
    return records, rejected


def summarize(index_paths, rejected_paths):
    """Per-class counts ``[(class, label, n_train, n_val, n_rejected)]`` and every rejected file, in order."""
    counts, rejected = {}, []
    for path in index_paths:
        rows = contract.read_index(path)
        split = Path(rows[0]["image"]).parts[0]  # paths are relative to the dataset root: <split>/<class>/...
        row = counts.setdefault(rows[0]["class"], {"label": rows[0]["label"], "train": 0, "val": 0, "rejected": 0})
        row[split] += len(rows)
    for path in rejected_paths:
        entries = contract.read_rejected(path)
        rejected.extend(entries)
        for image, _ in entries:
            counts[Path(image).parts[1]]["rejected"] += 1
    table = [(cls, c["label"], c["train"], c["val"], c["rejected"]) for cls, c in counts.items()]
    return table, rejected


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    scan = commands.add_parser("scan", help="index classes of one split, each to its own files")
    scan.add_argument("--root", required=True, type=Path, help="dataset folder holding train/ and val/")
    scan.add_argument("--split", required=True, choices=SPLITS)
    scan.add_argument("--class", dest="cls", nargs="+", required=True, help="class folder names")
    scan.add_argument("--label-table", required=True, help="'imagenet', 'folder' or a TSV path")
    scan.add_argument("--label", nargs="+", help="per class: label text that overrides the table, or ''")
    scan.add_argument("--extensions", nargs="+", required=True)
    scan.add_argument("--max-image-pixels", type=int, required=True)
    scan.add_argument("--min-image-side", type=int, default=None, help="dataset.min_image_side (default: the schema's)")
    scan.add_argument("--index", nargs="+", required=True, type=Path, help="per class: output JSON-lines index")
    scan.add_argument("--rejected", nargs="+", required=True, type=Path, help="per class: output TSV of rejected files")
    merge = commands.add_parser("merge", help="one split's index: the class indexes one after another")
    merge.add_argument("--index", nargs="+", required=True, type=Path, help="class indexes, in label order")
    merge.add_argument("--out", required=True, type=Path)
    summary = commands.add_parser("summarize", help="per-class counts and all rejected files of a run")
    summary.add_argument("--index", nargs="+", required=True, type=Path)
    summary.add_argument("--rejected", nargs="+", required=True, type=Path)
    summary.add_argument("--classes-out", required=True, type=Path)
    summary.add_argument("--rejected-out", required=True, type=Path)
    args = parser.parse_args(argv)
    if args.command == "merge":
        records = [r for path in args.index for r in contract.read_index(path)]
        contract.write_index(args.out, records)
        print(f"{len(records)} images of {len(args.index)} classes", file=sys.stderr)
        return
    if args.command == "summarize":
        table, rejected = summarize(args.index, args.rejected)
        contract.write_class_table(args.classes_out, table)
        contract.write_rejected(args.rejected_out, rejected)
        print(
            f"{len(table)} classes, {sum(r[2] + r[3] for r in table)} images, {len(rejected)} rejected", file=sys.stderr
        )
        return
    for one in each_class(args, ("cls", "label", "index", "rejected")):
        scan_one(one)


def scan_one(args):
    label = label_text(args.cls, args.label_table, args.label or None)
    records, rejected = index_class(
        args.root,
        args.split,
        args.cls,
        label,
        args.extensions,
        args.max_image_pixels,
        progress=True,
        min_side=args.min_image_side,
    )
    contract.write_rejected(args.rejected, rejected)
    contract.write_index(args.index, records)
    provenance.record(args.index, "index", vars(args))
    print(f"{args.split}/{args.cls}: {len(records)} images indexed, {len(rejected)} rejected", file=sys.stderr)


if __name__ == "__main__":
    run(main)

"""External distilled sets: an ImageFolder made elsewhere (D4M, Minimax, RDED, a colleague's), checked
and listed so that it is evaluated exactly as the run's own sets.

At plan time ``scan`` checks the folder's class folders against the dataset's classes and counts the
images per class (its IPC). The job (``python -m vlcp external``) decodes every image through the index
stage's checks and writes the set's manifest, whose image paths are absolute: the folder is read where
it is and never written to.
"""

import argparse
import sys
from pathlib import Path

from vlcp import contract, provenance
from vlcp.cli import run
from vlcp.errors import VlcpError
from vlcp.images import ImageRejected, open_image
from vlcp.names import METHODS
from vlcp.parallel import thread_map

RESERVED = METHODS


class ExternalSetError(VlcpError, ValueError):
    """An external set that cannot be evaluated as it is; the message names its folder and what to do."""


def check_name(name):
    if name in RESERVED or name.startswith("vlcp-"):
        raise ExternalSetError(
            f"Invalid config: external.{name}: the name is one of "
            f"the run's own methods ({', '.join(RESERVED)}, vlcp-*); "
            "give the set another name."
        )


def class_images(folder, extensions):
    """The files of a class folder with an image extension (dataset.image_extensions), not hidden, in natural
    order (``contract.natural_key``); other files (a provenance record, notes) are not part of the set."""
    suffixes = {e.lower() for e in extensions}
    return sorted(
        (p for p in folder.iterdir() if not p.name.startswith(".") and p.suffix.lower() in suffixes),
        key=contract.natural_key,
    )


def scan(name, folder, classes, extensions):
    """The IPC of the external set ``name`` at ``folder``: every class of the dataset has a folder, no other
    folder is there, and every class has the same number of images. Raises ExternalSetError naming the folder."""
    check_name(name)
    folder = Path(folder)
    where = f"external.{name} = {str(folder)!r}"
    if not folder.is_dir():
        raise ExternalSetError(f"{where} is not a folder; give the folder that holds one subfolder per class.")
    present = {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}
    missing = [c for c in classes if c not in present]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ExternalSetError(
            f"{where} has no folder for {len(missing)} of the dataset's "
            f"{len(classes)} classes ({shown}). An external set "
            "needs a subfolder per class, named as the dataset's "
            "class folders; rename its folders or set dataset.classes."
        )
    extra = sorted(present - set(classes))
    if extra:
        shown = ", ".join(extra[:10]) + (" ..." if len(extra) > 10 else "")
        raise ExternalSetError(
            f"{where} has folders that are not classes of the dataset: {shown}. Move them out of the set's folder "
            "(or add the classes to dataset.classes)."
        )
    counts = {c: len(class_images(folder / c, extensions)) for c in classes}
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        raise ExternalSetError(
            f"{where}: the class folder(s) {', '.join(empty[:10])} hold no images (extensions "
            f"{' '.join(extensions)}); a distilled set has images in every class."
        )
    if len(set(counts.values())) > 1:
        by_count = {}
        for c, n in counts.items():
            by_count.setdefault(n, []).append(c)
        shown = "; ".join(
            f"{n} in {', '.join(cs[:3])}{' ...' if len(cs) > 3 else ''}" for n, cs in sorted(by_count.items())
        )
        raise ExternalSetError(
            f"{where}: the classes hold different numbers of images ({shown}); a distilled set has "
            "the same number (its IPC) in every class."
        )
    return next(iter(counts.values()))


def check_images(name, folder, classes, extensions, max_pixels):
    """``(class, absolute path)`` of every image of the set, each decoded through the index stage's checks;
    the first unusable file stops with its path and the reason."""
    folder = Path(folder).absolute()
    files = [(cls, path) for cls in classes for path in class_images(folder / cls, extensions)]

    def check(item):
        path = item[1]
        try:
            if not path.is_file():
                raise ImageRejected("not a file")
            if path.stat().st_size == 0:
                raise ImageRejected("empty file (zero bytes)")
            open_image(path, max_pixels)
        except ImageRejected as err:
            return f"{path}: {err}"
        return None

    problems = [p for p in thread_map(check, files) if p]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ExternalSetError(
            f"external set {name!r} ({folder}): {problems[0]}{more}. Remove or replace the file(s); "
            "the set is evaluated whole or not at all."
        )
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--folder", required=True, type=Path)
    parser.add_argument("--classes", nargs="+", required=True)
    parser.add_argument("--extensions", nargs="+", required=True)
    parser.add_argument("--max-image-pixels", type=int, required=True)
    parser.add_argument("--out", required=True, type=Path, help="the set's manifest")
    args = parser.parse_args(argv)
    ipc = scan(args.name, args.folder, args.classes, args.extensions)
    files = check_images(args.name, args.folder, args.classes, args.extensions, args.max_image_pixels)
    rows = contract.write_listed_manifest(files, args.out)
    provenance.record(args.out, "external", {**vars(args), "ipc": ipc})
    print(
        f"external set {args.name}: {len(rows)} images, {ipc} per class, of {len(args.classes)} classes",
        file=sys.stderr,
    )


if __name__ == "__main__":
    run(main)

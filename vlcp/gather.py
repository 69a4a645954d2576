"""A per-class folder of the results (``captions/``, ``clusters/ipc<N>/seed<S>/``, a distilled set, ...) made
from the folders of its parts, which the per-class jobs write (rules/parts.smk): each part's entries
hard-linked into one folder, or copied where the file system has no hard links."""

import argparse
import os
import shutil
import sys
from pathlib import Path

from vlcp.atomic import atomic_dir
from vlcp.cli import run
from vlcp.errors import VlcpError


def link_or_copy(source, target):
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def entries(part):
    """The entries of a part's folder: not Snakemake's timestamp, nor any other hidden name."""
    return sorted(p for p in Path(part).iterdir() if not p.name.startswith("."))


def gather(parts, out):
    """Write ``out`` holding every entry of each folder of ``parts``, as hard links; two parts holding the same
    name are a broken run, stopped before anything is written."""
    seen = {}
    for part in parts:
        for entry in entries(part):
            if entry.name in seen:
                raise VlcpError(f"{entry} and {seen[entry.name]} have the same name; rerun the jobs that wrote them.")
            seen[entry.name] = entry
    with atomic_dir(out) as tmp:
        for name, entry in seen.items():
            if entry.is_dir():
                for folder, _, files in os.walk(entry):
                    target = tmp / name / Path(folder).relative_to(entry)
                    target.mkdir(parents=True, exist_ok=True)
                    for file in files:
                        link_or_copy(Path(folder) / file, target / file)
            else:
                link_or_copy(entry, tmp / name)
    return len(seen)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", required=True, type=Path, help="the parts' folders")
    parser.add_argument("--out", required=True, type=Path, help="the folder to write")
    args = parser.parse_args(argv)
    count = gather(args.parts, args.out)
    print(f"{args.out}: {count} entries of {len(args.parts)} part(s)", file=sys.stderr)


if __name__ == "__main__":
    run(main)

"""The classes_per_job layer, job side: a job of a per-class stage handles one class or a part of
several classes. Its per-class options come as parallel lists (one value per class) and its settings
once; a job of a part claims its outputs in a ledger before it writes them and writes the part's
record (``contract.write_part_record``) once every class is done. The workflow side is
rules/parts.smk."""

import argparse
import shutil
from pathlib import Path

from vlcp import contract
from vlcp.atomic import OutputExistsError, atomic_write
from vlcp.errors import VlcpError


def add_part_option(parser):
    parser.add_argument(
        "--part-marker",
        type=Path,
        help="a job of several classes: its record, written after every class's outputs (see classes_per_job)",
    )


def each_class(args, names, outputs=()):
    """One namespace per class from ``args``, whose options ``names`` list one value per class.

    A job of a per-class stage handles one class or a part of several (config `classes_per_job`);
    its per-class options (inputs, outputs) come as parallel lists, its settings once. An option
    left unset (None) stays unset for every class. With ``--part-marker`` the job's per-class
    ``outputs`` are not Snakemake's to remove before a rerun, so this does it, for files this part
    wrote before (listed in its ledger beside the record) and nothing else; the record itself is
    written once every class is done.
    """
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    counts = {len(values) for values in given.values()}
    if len(counts) != 1:
        listed = ", ".join(f"--{name.replace('_', '-')} ({len(values)})" for name, values in given.items())
        raise VlcpError(f"per-class options must list one value per class, the same number each: {listed}")
    count = counts.pop()
    marker = getattr(args, "part_marker", None)
    if marker:
        written = [Path(p) for name in outputs if name in given for p in given[name]]
        claim_outputs(marker, written)
    settings = vars(args)
    for i in range(count):
        yield argparse.Namespace(**{**settings, **{name: values[i] for name, values in given.items()}})
    if marker:
        contract.write_part_record(marker, {name: given[name] for name in outputs if name in given})


def ledger_path(marker):
    return Path(marker).with_name(Path(marker).name + ".written")


def claim_outputs(marker, paths):
    """Clear what this part wrote before at ``paths``, then list ``paths`` in its ledger before writing them.

    Anything at one of the paths that the ledger does not list was not made by this part: stop.
    """
    ledger = ledger_path(marker)
    owned = set(ledger.read_text().splitlines()) if ledger.exists() else set()
    for path in paths:
        if not (path.exists() or path.is_symlink()):
            continue
        if str(path) not in owned:
            raise OutputExistsError(
                f"{path} already exists and was not written by the job of {Path(marker).name}; vlcp does not "
                "overwrite it. Move or delete it yourself, then rerun."
            )
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    with atomic_write(ledger, overwrite=True) as handle:
        handle.writelines(f"{p}\n" for p in sorted(owned | {str(p) for p in paths}))

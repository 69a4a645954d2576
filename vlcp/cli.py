"""The one way every ``python -m vlcp.<stage>`` entry reports an expected failure: a line naming the
problem and what to do, exit 1. Anything else keeps its traceback."""

import argparse
import ctypes
import errno
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from vlcp.atomic import OutputExistsError, atomic_write
from vlcp.errors import VlcpError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def describe(err):
    """A one-line message for an error of ours or of the file system, with what to do about it."""
    if isinstance(err, OSError) and err.errno in DISK_FULL:
        return (f"the disk is full while writing {err.filename or 'an output'}; nothing half-written was kept. "
                "Free space, or set results_dir to a larger file system, and rerun.")
    if isinstance(err, OSError) and err.errno in NOT_WRITABLE:
        return (f"cannot write {err.filename or 'an output'} ({err.strerror}); "
                "check the permissions of results_dir, or set it to a folder you can write.")
    return str(err)


def is_snakemake(pid):
    """Whether process ``pid`` runs Snakemake (``snakemake ...`` or ``python -m snakemake ...``)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(a == b"snakemake" or a.endswith((b"/snakemake", b"snakemake/__main__.py")) for a in args)


def parent_of(pid):
    """The parent pid of ``pid`` (0 when it is gone), and whether it is a zombie (ended, not yet reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, True
    return int(fields[1]), fields[0] == "Z"


def snakemake_ancestor():
    """The pid of the nearest ancestor process running Snakemake, or None (run by hand, or no /proc)."""
    pid = os.getppid()
    while pid > 1:
        if is_snakemake(pid):
            return pid
        pid, _ = parent_of(pid)
    return None


def end_with_snakemake():
    """A job ends when the Snakemake that runs it ends, instead of running on orphaned: SIGTERM (sent by
    the kernel when the job's shell dies, as when Snakemake cancels the job) ends the job as Ctrl-C
    would, through every ``finally`` (so no half-written output stays), and a thread watches the
    Snakemake process, which a SIGKILL ends without telling its jobs."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: SIGTERM when the parent shell dies
    except (OSError, AttributeError):
        pass
    ancestor = snakemake_ancestor()
    if ancestor is None:
        return

    def watch():
        while True:
            time.sleep(1)
            if parent_of(ancestor)[1]:
                print("Snakemake ended; ending this job", file=sys.stderr)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, daemon=True).start()


def run(main):
    """Call ``main()``; turn the expected failures (vlcp's own errors, a full disk, an output folder
    that cannot be written) into one line. A library's error or a defect keeps its traceback. The job
    ends with the Snakemake that runs it (``end_with_snakemake``)."""
    end_with_snakemake()
    try:
        main()
    except VlcpError as err:
        sys.exit(f"error: {describe(err)}")
    except OSError as err:
        if err.errno not in DISK_FULL + NOT_WRITABLE:
            raise
        sys.exit(f"error: {describe(err)}")


def add_part_option(parser):
    parser.add_argument(
        "--part-marker", type=Path,
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
        rows = [[str(given[name][i]) for name in outputs if name in given] for i in range(count)]
        with atomic_write(marker) as handle:
            handle.write("\t".join(name for name in outputs if name in given) + "\n")
            handle.writelines("\t".join(row) + "\n" for row in rows)


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

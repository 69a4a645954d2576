"""The one way every ``python -m vlcp.<stage>`` entry reports an expected failure: a line naming the
problem and what to do, exit 1. Anything else keeps its traceback."""

import ctypes
import errno
import os
import signal
import sys
import threading
import time
from pathlib import Path

from vlcp.errors import VlcpError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def describe(err):
    """A one-line message for an error of ours or of the file system, with what to do about it."""
    if isinstance(err, OSError) and err.errno in DISK_FULL:
        return (
            f"the disk is full while writing {err.filename or 'an output'}; nothing half-written was kept. "
            "Free space, or set results_dir to a larger file system, and rerun."
        )
    if isinstance(err, OSError) and err.errno in NOT_WRITABLE:
        return (
            f"cannot write {err.filename or 'an output'} ({err.strerror}); "
            "check the permissions of results_dir, or set it to a folder you can write."
        )
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
        return None

    def watch():
        while True:
            time.sleep(1)
            if parent_of(ancestor)[1]:
                print("Snakemake ended; ending this job", file=sys.stderr)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, daemon=True).start()
    return ancestor


PEAK_LINE = "peak resident memory "


def peak_memory_gib():
    """The largest resident memory this process has had, in GiB (the kernel's count, not a sample)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def peak_in_log(path):
    """The GiB of the peak-memory line a finished stage wrote at the end of its log ``path``, or None."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    found = [ln for ln in lines if ln.startswith(PEAK_LINE)]
    return float(found[-1][len(PEAK_LINE) :].split()[0]) if found else None


def run(main):
    """Call ``main()``; turn the expected failures (vlcp's own errors, a full disk, an output folder
    that cannot be written) into one line. A library's error or a defect keeps its traceback. The job
    ends with the Snakemake that runs it (``end_with_snakemake``), and its log ends with its peak memory."""
    job = end_with_snakemake() is not None
    try:
        main()
        if job:  # the last line of a job's log: what the job needed, measured, not sampled
            print(f"{PEAK_LINE}{peak_memory_gib():.1f} GiB (this process)", file=sys.stderr)
    except VlcpError as err:
        sys.exit(f"error: {describe(err)}")
    except OSError as err:
        if err.errno not in DISK_FULL + NOT_WRITABLE:
            raise
        sys.exit(f"error: {describe(err)}")

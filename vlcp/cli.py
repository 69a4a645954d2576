"""The one way every ``python -m vlcp.<stage>`` entry reports a failure: a line naming the problem, exit 1."""

import errno
import sys

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


def run(main):
    """Call ``main()``; turn the expected failures (bad files, missing models, full disks) into one line."""
    try:
        main()
    except (OSError, ValueError) as err:
        sys.exit(f"error: {describe(err)}")

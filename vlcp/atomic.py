"""Atomic outputs: a file or folder appears whole under its final name, or not at all.

A job killed part-way leaves at most a hidden ``.tmp-*`` sibling, never a file
that a rerun would take for finished work.
"""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from vlcp.errors import VlcpError


class OutputExistsError(VlcpError, FileExistsError):
    """Raised instead of replacing something already at an output path."""


def _check_free(path):
    if path.exists() or path.is_symlink():
        raise OutputExistsError(
            f"{path} already exists; vlcp does not overwrite it. Move or delete it yourself, "
            "or let Snakemake do so by rerunning the rule that makes it."
        )


def current_umask():
    """This process's umask, read without changing it (os.umask sets it for every thread while it reads)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp and mkdtemp make owner-only files and folders; an output gets the modes the user's umask gives an
# ordinary file or folder, so that a group sharing results can read them.
def file_mode():
    return 0o666 & ~current_umask()


def dir_mode():
    return 0o777 & ~current_umask()


def share(folder):
    """Give everything under ``folder`` the umask's modes: writers such as safetensors' (save_pretrained)
    make owner-only files."""
    files, dirs = file_mode(), dir_mode()
    for path in folder.rglob("*"):
        if not path.is_symlink():
            path.chmod(dirs if path.is_dir() else files | (path.stat().st_mode & 0o111 & dirs))


@contextlib.contextmanager
def atomic_write(path, mode="w", overwrite=False, newline=None):
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` on success."""
    path = Path(path)
    if not overwrite:
        _check_free(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": newline})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.filename is None:
            err.filename = str(path)
        raise


@contextlib.contextmanager
def atomic_dir(path):
    """Yield an empty temporary folder beside ``path``; rename it to ``path`` on success."""
    path = Path(path)
    _check_free(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}.", dir=path.parent))
    try:
        tmp.chmod(dir_mode())
        yield tmp
        share(tmp)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

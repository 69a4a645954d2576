"""Fault injection for the tests, set through the environment of a real run.

VLCP_KILL='module:function:N': SIGKILL the process after the N-th call of the function.
VLCP_INTERRUPT='module:function:N': after the N-th call, send SIGINT to the Snakemake process that
runs the job (as Ctrl-C would) and wait for it to end the job.
VLCP_FAIL_ONCE='module:function:MARKER': the first call (while MARKER does not exist) creates
MARKER and exits with status 1, so the job fails once and succeeds when retried.

Python imports ``sitecustomize`` at start-up from any folder on PYTHONPATH; the fault tests put
this folder there, so every job of a real Snakemake run gets the wrapped function.
"""

import functools
import importlib
import os
import signal
import sys
import time
from pathlib import Path


def target(module_name, function):
    owner = importlib.import_module(module_name)
    *path, name = function.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, name


fail_once = os.environ.get("VLCP_FAIL_ONCE")
if fail_once:
    module_name, function, marker = fail_once.split(":")
    owner, name = target(module_name, function)
    first = getattr(owner, name)

    @functools.wraps(first)
    def fails_once(*args, **kwargs):
        if not Path(marker).exists():
            Path(marker).write_text("failed once\n")
            sys.exit("injected failure (VLCP_FAIL_ONCE)")
        return first(*args, **kwargs)

    setattr(owner, name, fails_once)

def after_calls(spec, action):
    """Wrap the function of ``spec`` ('module:function:N') so that ``action()`` runs after its N-th call."""
    module_name, function, after = spec.split(":")
    owner, name = target(module_name, function)
    original = getattr(owner, name)
    calls = []

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append(1)
        if len(calls) >= int(after):
            action()
        return result

    setattr(owner, name, wrapped)


def snakemake_ancestor():
    """The pid of the nearest ancestor process running Snakemake."""
    pid = os.getppid()
    while pid > 1:
        if b"snakemake" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    raise RuntimeError("no Snakemake process above this job")


def interrupt_snakemake():
    os.kill(snakemake_ancestor(), signal.SIGINT)
    time.sleep(15)  # Snakemake ends this job as it shuts down


if os.environ.get("VLCP_KILL"):
    after_calls(os.environ["VLCP_KILL"], lambda: os.kill(os.getpid(), signal.SIGKILL))
if os.environ.get("VLCP_INTERRUPT"):
    after_calls(os.environ["VLCP_INTERRUPT"], interrupt_snakemake)

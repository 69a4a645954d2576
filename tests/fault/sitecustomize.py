"""Fault injection for the tests, set through the environment of a real run.

VLCP_KILL='module:function:N': SIGKILL the process after the N-th call of the function.
VLCP_KILL_SNAKEMAKE='module:function:N': after the N-th call, SIGKILL the Snakemake process that runs
the job, then go on (see ``kill_snakemake``).
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


def kill_snakemake():
    """SIGKILL the Snakemake running this job, then go on for 8 s and leave a mark (VLCP_SURVIVED):
    a job that ends with its Snakemake never writes it."""
    from vlcp.cli import snakemake_ancestor

    os.kill(snakemake_ancestor(), signal.SIGKILL)
    time.sleep(8)
    Path(os.environ["VLCP_SURVIVED"]).write_text("the job outlived its Snakemake\n")


if os.environ.get("VLCP_KILL"):
    after_calls(os.environ["VLCP_KILL"], lambda: os.kill(os.getpid(), signal.SIGKILL))
if os.environ.get("VLCP_KILL_SNAKEMAKE"):
    after_calls(os.environ["VLCP_KILL_SNAKEMAKE"], kill_snakemake)

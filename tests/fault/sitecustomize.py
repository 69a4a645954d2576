"""Fault injection for the tests, set through the environment of a real run.

VLCP_KILL='module:function:N': SIGKILL the process after the N-th call of the function.
VLCP_KILL_SNAKEMAKE='module:function:N': after the N-th call, SIGKILL the Snakemake process that runs
the job, then go on (see ``kill_snakemake``).
VLCP_FAIL_ONCE='module:function:MARKER': the first call (while MARKER does not exist) creates
MARKER and exits with status 1, so the job fails once and succeeds when retried.

Python imports ``sitecustomize`` at start-up from any folder on PYTHONPATH; the fault tests put
this folder there, so every job of a real Snakemake run gets the wrapped function. The function is
wrapped when its module is first imported, not at start-up: Snakemake itself and the jobs of other
stages then never import it (nor torch), and start as fast as in a run without faults.
"""

import functools
import importlib.abc
import importlib.util
import os
import signal
import sys
import time
from pathlib import Path


class WrapOnImport(importlib.abc.MetaPathFinder):
    """Calls ``patch(module)`` right after ``module_name`` has been executed by its own loader."""

    def __init__(self, module_name, patch):
        self.module_name, self.patch = module_name, patch

    def find_spec(self, fullname, path, target=None):
        if fullname != self.module_name:
            return None
        sys.meta_path.remove(self)  # the finders after this one find the module's own spec
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        execute, patch = spec.loader.exec_module, self.patch

        def exec_module(module):
            execute(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


def when_imported(module_name, patch):
    """``patch(module)`` now if ``module_name`` is imported already, else as soon as it is."""
    if module_name in sys.modules:
        patch(sys.modules[module_name])
    else:
        sys.meta_path.insert(0, WrapOnImport(module_name, patch))


def wrap(module_name, function, make_wrapper):
    """Replace ``module_name``'s ``function`` (dotted: 'Class.method') by ``make_wrapper(original)``
    once the module is imported."""
    *path, name = function.split(".")

    def patch(module):
        owner = module
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, functools.wraps(getattr(owner, name))(make_wrapper(getattr(owner, name))))

    when_imported(module_name, patch)


fail_once = os.environ.get("VLCP_FAIL_ONCE")
if fail_once:
    module_name, function, marker = fail_once.split(":")

    def failing_once(first):
        def fails_once(*args, **kwargs):
            if not Path(marker).exists():
                Path(marker).write_text("failed once\n")
                sys.exit("injected failure (VLCP_FAIL_ONCE)")
            return first(*args, **kwargs)

        return fails_once

    wrap(module_name, function, failing_once)


def after_calls(spec, action):
    """Wrap the function of ``spec`` ('module:function:N') so that ``action()`` runs after its N-th call."""
    module_name, function, after = spec.split(":")
    calls = []

    def counting(original):
        def wrapped(*args, **kwargs):
            result = original(*args, **kwargs)
            calls.append(1)
            if len(calls) >= int(after):
                action()
            return result

        return wrapped

    wrap(module_name, function, counting)


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

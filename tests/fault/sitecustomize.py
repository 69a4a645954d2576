"""Fault injection for the tests: with VLCP_KILL='module:function:N' set, SIGKILL the process after the N-th call.

Python imports ``sitecustomize`` at start-up from any folder on PYTHONPATH; the fault tests put
this folder there, so every job of a real Snakemake run gets the wrapped function.
"""

import functools
import importlib
import os
import signal

spec = os.environ.get("VLCP_KILL")
if spec:
    module_name, function, after = spec.split(":")
    owner = importlib.import_module(module_name)
    *path, name = function.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = []

    @functools.wraps(original)
    def killed_after(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append(1)
        if len(calls) >= int(after):
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, killed_after)

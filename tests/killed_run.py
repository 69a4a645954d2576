"""Run a vlcp entry point with one function wrapped: count its calls, and SIGKILL the process after the N-th.

    python tests/killed_run.py MODULE FUNCTION KILL_AFTER COUNT_FILE -- ARGS...

FUNCTION may be dotted (``Progress.append``). KILL_AFTER 0 never kills. Each call
appends a line to COUNT_FILE, so a test can tell how much work a run did.
"""

import functools
import importlib
import os
import signal
import sys


def main():
    module_name, function, kill_after, count_file, separator, *args = sys.argv[1:]
    assert separator == "--"
    module = importlib.import_module(module_name)
    owner = module
    *path, name = function.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = []

    @functools.wraps(original)
    def wrapped(*a, **k):
        result = original(*a, **k)
        calls.append(1)
        with open(count_file, "a") as handle:
            handle.write("call\n")
        if int(kill_after) and len(calls) >= int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapped)
    module.main(args)


if __name__ == "__main__":
    main()

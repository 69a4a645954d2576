"""Parts of classes, job side: a job of a per-class stage handles the classes of one part (config
`classes_per_job`; rules/parts.smk is the workflow side). Its per-class options come as parallel lists, a
value per class, and its settings once."""

import argparse

from vlcp.errors import VlcpError


def each_class(args, names):
    """One namespace per class from ``args``, whose options ``names`` list one value per class.

    An option left unset (None) stays unset for every class.
    """
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    counts = {len(values) for values in given.values()}
    if len(counts) != 1:
        listed = ", ".join(f"--{name.replace('_', '-')} ({len(values)})" for name, values in given.items())
        raise VlcpError(f"per-class options must list one value per class, the same number each: {listed}")
    settings = vars(args)
    for i in range(counts.pop()):
        yield argparse.Namespace(**{**settings, **{name: values[i] for name, values in given.items()}})

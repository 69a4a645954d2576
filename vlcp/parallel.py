"""The CPU threads a job may use, and an ordered map over them for image decoding.

Snakemake gives every job its rule's threads (config resources.<rule>.cpus_per_task) as
OMP_NUM_THREADS, which torch and scikit-learn read themselves; decoding images with Pillow
releases the GIL, so a thread pool of the same size spreads it over the job's cores.
"""

import os
from concurrent.futures import ThreadPoolExecutor


def cpu_threads():
    """OMP_NUM_THREADS when set (Snakemake sets it from the rule's threads), else the cores this process may use."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def thread_map(fn, items, threads=None):
    """``[fn(x) for x in items]``, in order, computed on ``threads`` threads (default ``cpu_threads()``)."""
    items = list(items)
    threads = min(threads or cpu_threads(), len(items))
    if threads <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, items))

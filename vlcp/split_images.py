"""The uint8 images a classifier trains or tests on: decoded once into one tensor on the device, or, for a
whole real split too large for that (ImageNet-1K's 1.28 M train images are 193 GB at 224 px), read from
disk batch by batch.

Both kinds answer ``len(images)``, ``images.device`` and ``images[index]`` (a tensor of positions or a
slice) with the same uint8 batch on the device, so the training and test loops of vlcp.evaluate and
vlcp.rded run unchanged on either and give the same numbers: only memory and speed differ. Which one a
set gets is computed from its size and the memory there is (``fits``), unless
``execution.<stage>.image_loading`` says.
"""

import os
import sys
from pathlib import Path

import numpy as np
import torch

from vlcp.parallel import thread_map

LOADING = ("auto", "memory", "stream")
# Share of the free memory the decoded set may take: the rest is for the network, its activations and
# the other set; host memory must hold the decoded images twice while they are stacked.
SHARE = 0.5


def decode_batch(paths, decode):
    """uint8 tensor (N, 3, H, W) of ``decode(path)`` (an HWC uint8 array) of each path, on the job's threads."""
    return torch.from_numpy(np.stack(thread_map(decode, paths))).permute(0, 3, 1, 2).contiguous()


class StreamedImages:
    """A set of images on disk, decoded at each access: ``images[index]`` decodes those images on the
    job's threads and moves them to ``device``. Memory is that of one batch, whatever the set's size."""

    def __init__(self, paths, decode, device):
        self.paths = [str(p) for p in paths]
        self.decode = decode
        self.device = torch.device(device)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        if isinstance(index, slice):
            chosen = self.paths[index]
        else:
            chosen = [self.paths[i] for i in torch.as_tensor(index).tolist()]
        return decode_batch(chosen, self.decode).to(self.device, non_blocking=True)


def cgroup_limit():
    """The memory limit of this process's cgroup (a SLURM job's allocation), or None where there is none."""
    for name in ("memory.max", "memory.limit_in_bytes"):  # cgroup v2, v1
        for folder in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/memory")):
            try:
                text = (folder / name).read_text().strip()
            except OSError:
                continue
            if text.isdigit() and int(text) < 2**60:
                return int(text)
    return None


def host_available():
    """Bytes of host memory this job can still take: MemAvailable, at most the cgroup's limit less what
    this process holds."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    limit = cgroup_limit()
    if limit is not None:
        import resource

        held = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        available = min(available, max(0, limit - held))
    return available


def set_bytes(count, side):
    """Bytes of ``count`` uint8 RGB images of ``side`` x ``side`` pixels."""
    return count * 3 * side * side


def fits(nbytes, device, host_bytes=None, device_bytes=None):
    """Whether a decoded set of ``nbytes`` may stay in memory: stacking it takes twice its size on the host,
    and on a GPU it must fit in a share of the free device memory too. ``host_bytes`` / ``device_bytes``:
    the free memory (measured when not given)."""
    host_bytes = host_available() if host_bytes is None else host_bytes
    if 2 * nbytes > SHARE * host_bytes:
        return False
    if torch.device(device).type == "cuda":
        device_bytes = torch.cuda.mem_get_info(device)[0] if device_bytes is None else device_bytes
        return nbytes <= SHARE * device_bytes
    return True


def load_images(paths, decode, side, device, loading="auto", what="images"):
    """The images of ``paths`` for training or testing on ``device``: one decoded tensor when
    ``loading`` is 'memory', or 'auto' and the set ``fits``; else a StreamedImages. ``side``: the side
    ``decode`` gives, for the size; ``what`` names the set in the job's log."""
    if loading not in LOADING:
        raise ValueError(f"image loading is one of {LOADING}, not {loading!r}")
    nbytes = set_bytes(len(paths), side)
    stream = loading == "stream" or (loading == "auto" and not fits(nbytes, device))
    if stream:
        print(
            f"{what}: {len(paths)} images ({nbytes / 2**30:.1f} GiB decoded) read from disk batch by batch"
            f"{'' if loading == 'stream' else ', too many to hold in memory'}",
            file=sys.stderr,
        )
        return StreamedImages(paths, decode, device)
    return decode_batch(paths, decode).to(device)

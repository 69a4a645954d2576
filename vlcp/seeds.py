"""One seeding scheme for every random draw of the workflow: a seed is derived from the names and
numbers that identify the draw (stage, class, cluster, distillation seed, epoch, ...) by hashing them,
so draws of different purposes never share a stream and any one of them can be remade alone."""

import hashlib


def derive(*parts):
    """A 63-bit seed from ``parts``: the first 8 bytes (little-endian) of sha256 of their text joined by NUL."""
    digest = hashlib.sha256("\0".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)

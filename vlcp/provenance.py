"""What produced a result: a small JSON file beside every output of a stage.

It records the stage, its settings (the config slice it ran with, seeds
included), the versions of the packages that shape the numbers, and the models
it loaded: a hub id as given, or a local folder with a fingerprint of its files.
"""

import datetime
import functools
import hashlib
import json
import platform
import shutil
from importlib import metadata
from pathlib import Path

from vlcp.atomic import atomic_write

PACKAGES = (
    "vlcp",
    "torch",
    "torchvision",
    "diffusers",
    "transformers",
    "accelerate",
    "safetensors",
    "scikit-learn",
    "numpy",
    "pillow",
    "pandas",
    "snakemake",
)
EDGE = 1 << 20  # bytes read from each end of a large file


def package_versions():
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def folder_fingerprint(folder):
    """sha256 over every file's relative path and size, and its bytes (first and last MiB of large files)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder).as_posix()}\0{size}\0".encode())
        with path.open("rb") as handle:
            if size <= 8 * EDGE:
                digest.update(handle.read())
            else:
                digest.update(handle.read(EDGE))
                handle.seek(-EDGE, 2)
                digest.update(handle.read(EDGE))
    return digest.hexdigest()


def model_identity(name):
    """A hub id as given, or a local folder's absolute path and fingerprint."""
    path = Path(name)
    if path.is_dir():
        return {"path": str(path.resolve()), "fingerprint": loaded_model_fingerprint(str(path.resolve()))}
    return {"hub_id": name}


@functools.lru_cache(maxsize=None)
def loaded_model_fingerprint(folder):
    """``folder_fingerprint`` of a model folder, read once per process: a job's models do not change while
    it runs, and its stages name them in every output's record and work marker, class by class."""
    return folder_fingerprint(folder)


def work_identity(settings, models=(), inputs=()):
    """What a job's resumable work folder was made from: its settings, each model's identity
    (``model_identity``) and each input file's path, size and modification time. A work folder whose
    identity differs is another run's and must not be resumed."""
    stats = []
    for path in inputs:
        info = Path(path).stat()
        stats.append([str(path), info.st_size, info.st_mtime_ns])
    return json.loads(
        json.dumps(
            {"settings": plain(settings), "models": [model_identity(m) for m in models], "inputs": stats}, default=str
        )
    )


WORK_MARKER = "identity.json"


def claim_work(work, identity):
    """Make ``work`` the resumable work folder of a job made from ``identity`` (``work_identity``): kept
    when it was made from the same, else removed and started anew (a work folder is the stage's own, and
    another run's leftovers must not be resumed). Returns True when the folder was kept."""
    work = Path(work)
    marker = work / WORK_MARKER
    mine = marker.is_file() and json.loads(marker.read_text()) == identity
    if work.exists() and not mine:
        shutil.rmtree(work)  # our own leftovers, of other settings, models or inputs
    work.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(identity))
    return mine


def plain(settings):
    """Settings with paths (alone or in lists) as strings, as JSON holds them."""
    return {
        k: (
            str(v)
            if isinstance(v, Path)
            else [str(x) if isinstance(x, Path) else x for x in v]
            if isinstance(v, list)
            else v
        )
        for k, v in settings.items()
    }


def provenance_path(output):
    """``<folder>/provenance.json`` for a folder output, ``<file>.provenance.json`` beside a file output."""
    output = Path(output)
    return output / "provenance.json" if output.is_dir() else output.with_name(output.name + ".provenance.json")


def read_record(output):
    """The provenance record of ``output`` (a file or folder output), or None where it has none."""
    path = provenance_path(output)
    return json.loads(path.read_text()) if path.is_file() else None


def record(output, stage, settings, models=()):
    """Write the provenance file of ``output`` (call after the output exists, or inside its temporary folder)."""
    content = {
        "stage": stage,
        "output": str(output),
        "settings": plain(settings),
        "models": [model_identity(m) for m in models],
        "packages": package_versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with atomic_write(provenance_path(output), overwrite=True) as handle:
        json.dump(content, handle, indent=1)
        handle.write("\n")

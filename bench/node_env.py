"""A Python environment set up like the GPU node's, to rehearse bench/gpu.py where there is no GPU.

The node has its own torch, torchvision, accelerate, transformers (another version than constraints.txt's)
and the scientific stack, but no diffusers, jsonschema or Snakemake, and vlcp is not installed. This
builds that here in seconds: a new virtual environment whose packages are this checkout's environment
(``--like``, default .venv) less diffusers, jsonschema and its dependencies, Snakemake and vlcp itself,
with transformers at ``--transformers`` (default 5.17.0, the node's), huggingface_hub 1.x and httpx installed
in it; and the folder
of wheels bench/gpu.py installs there, fetched for this Python by the same pip line as the node's.

    python bench/node_env.py ENV_DIR --wheels WHEEL_DIR
    ENV_DIR/bin/python bench/gpu.py --device cpu --wheels WHEEL_DIR
"""

import argparse
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).parent
REPO = HERE.parent
# Distributions the node does not have (or has at another version: transformers, installed apart).
ABSENT = {"diffusers", "jsonschema", "jsonschema-specifications", "referencing", "rpds-py", "transformers", "vlcp"}
ABSENT_PREFIXES = ("snakemake",)


def normal(name):
    return name.lower().replace("_", "-")


def wheel_names():
    """The distributions of bench/gpu-wheels.txt."""
    lines = (HERE / "gpu-wheels.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def download_wheels(folder, python_version=None):
    """Fetch bench/gpu-wheels.txt's wheels at constraints.txt's versions for ``python_version`` (default:
    this Python) into ``folder``: the pip download line of bench/README.md."""
    version = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    platforms = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    command += ["--python-version", version, "--implementation", "cp"]
    command += [arg for p in platforms for arg in ("--platform", p)]
    command += ["-c", str(REPO / "constraints.txt"), "-d", str(folder), *wheel_names()]
    subprocess.run(command, check=True)
    return sorted(Path(folder).glob("*.whl"))


def top_level_entries(site, exclude):
    """The top-level files and folders of ``site``'s distributions, but those of ``exclude``'s."""
    dists = metadata.distributions(path=[str(site)])
    excluded = set()
    for dist in dists:
        name = normal(dist.metadata["Name"] or "")
        if name in exclude or name.startswith(ABSENT_PREFIXES):
            excluded |= {Path(f).parts[0] for f in dist.files or []}
    return [p for p in Path(site).iterdir() if p.name not in excluded and not p.name.endswith(".pth")]


def build(env_dir, like, transformers):
    """The node-like environment at ``env_dir``; returns its Python."""
    env_dir = Path(env_dir)
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    like_site = next(Path(like).glob("lib/python*/site-packages"))
    machine = env_dir / "machine-packages"
    machine.mkdir()
    for entry in top_level_entries(like_site, ABSENT):
        os.symlink(entry, machine / entry.name)
    (site / "machine-packages.pth").write_text(f"{machine}\n")
    # the node's transformers, its huggingface_hub 1.x and the httpx that imports (constraints.txt has hub 2, httpx2)
    packages = [f"transformers=={transformers}", "huggingface_hub>=1.5,<2", "httpx", "httpcore"]
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", *packages], check=True)
    return python


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env_dir", type=Path)
    parser.add_argument("--like", type=Path, default=REPO / ".venv", help="the environment to take packages from")
    parser.add_argument("--transformers", default="5.17.0", help="the node's transformers version")
    parser.add_argument("--wheels", type=Path, help="also fetch bench/gpu.py's wheels for this Python here")
    args = parser.parse_args()
    python = build(args.env_dir, args.like, args.transformers)
    print(f"node-like environment: {python}")
    if args.wheels:
        print(f"{len(download_wheels(args.wheels))} wheels in {args.wheels}")


if __name__ == "__main__":
    main()

"""Remake one distilled image from a finished run: its saved centre and text prototype, the fine-tuned model
and the settings recorded beside the set, byte-identical to the image in the set.

Each image's generator is seeded from (class, cluster, seed) alone (``synthesize.image_seed``). Float
kernels may round differently at another batch size, so the batch the image was made in is made again
(at most execution.synthesize.batch_size images) and only the asked-for image is kept; on the CPU it
runs with the job's recorded thread count. The same bytes need the same kind of device and the same
library versions as the run; both are compared with the set's record and a difference is reported.
"""

import argparse
import hashlib
import sys
from pathlib import Path

from vlcp import contract, provenance
from vlcp.atomic import atomic_write
from vlcp.cli import run
from vlcp.errors import VlcpError


class RegenerateError(VlcpError, ValueError):
    """A run, set or image that cannot be regenerated; the message names it and says what to do."""


def set_class_folder(run_dir, strategy, ipc, seed, cls):
    return Path(run_dir) / "distilled" / f"vlcp-{strategy}" / f"ipc{ipc}" / f"seed{seed}" / cls


def synthesize_record(folder):
    """The synthesize record of a class folder of a distilled set (``provenance.json``)."""
    path = folder / "provenance.json"  # a class folder's record
    record = provenance.read_record(folder) if folder.is_dir() else None
    if record is None:
        parent = folder.parent
        known = sorted(p.name for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []
        hint = f"; its classes are {', '.join(known[:20])}" if known else "; check --run, --strategy, --ipc and --seed"
        raise RegenerateError(f"{path} does not exist: {folder} is not a class folder of a finished VLCP set{hint}")
    if record.get("stage") != "synthesize":
        raise RegenerateError(
            f"{path} was written by the {record.get('stage')!r} stage; only synthesized images can be regenerated"
        )
    return record


def relocate(record, folder):
    """A function mapping a path as the run recorded it (relative to the folder Snakemake ran in) to where
    it is now, found from the class folder's own recorded path and where that folder is now."""
    recorded = Path(record["settings"]["out"])
    tail = Path(*recorded.parts[-5:])  # distilled/vlcp-<strategy>/ipc<N>/seed<S>/<class>
    if Path(*folder.parts[-5:]) != tail:
        raise RegenerateError(
            f"{folder / 'provenance.json'} records the set {recorded}, not {folder}; the run folder was edited"
        )
    recorded_run, run_now = recorded.parents[4], folder.parents[4]

    def where(path):
        path = Path(path)
        if path.is_absolute():
            return path
        try:
            return run_now / path.relative_to(recorded_run)
        except ValueError:
            return path

    return where


def check_same_model(record, model):
    """The fine-tuned model must be the one the set was made with (its recorded fingerprint)."""
    recorded = next((m for m in record.get("models", []) if "fingerprint" in m), None)
    if recorded is None:
        return
    now = provenance.folder_fingerprint(model)
    if now != recorded["fingerprint"]:
        raise RegenerateError(
            f"the fine-tuned model at {model} is not the one that made this set (its files changed since: "
            "fingerprint differs); the image would not be the same. Rerun the workflow to remake the set."
        )


def environment_differences(record, on):
    """Package versions and device kind that differ from the run's record, as readable lines."""
    lines = []
    then = record["packages"]
    now = provenance.package_versions()
    for name in ("torch", "diffusers", "transformers", "pillow", "numpy"):
        if then.get(name) != now.get(name):
            lines.append(f"{name} {now.get(name)} here, {then.get(name)} in the run")
    if record["settings"]["device"] != on.type:
        lines.append(f"device {on.type} here, {record['settings']['device']} in the run")
    return lines


def regenerate(run_dir, cls, ipc, seed, cluster, strategy="prototype"):
    """``(image, path of the set's image)``: the PIL image (at the set's saved size) of one cluster."""
    import torch

    from vlcp.models import device, dtype_for, load_stable_diffusion
    from vlcp.synthesize import (
        image_seed,
        resize_for_evaluation,
        set_scheduler,
        synthesize,
    )

    folder = set_class_folder(run_dir, strategy, ipc, seed, cls)
    record = synthesize_record(folder)
    settings = record["settings"]
    where = relocate(record, folder)
    clusters_path, centres_path, prototypes_path = (where(settings[k]) for k in ("clusters", "centres", "prototypes"))
    for path in (clusters_path, centres_path, prototypes_path):
        if not path.is_file():
            raise RegenerateError(
                f"{path} (read when the set was made) is missing; rerun the workflow to make it again"
            )
    _, centres = contract.read_clusters(clusters_path, centres_path)
    prototypes = contract.read_prototypes(prototypes_path)
    if not 0 <= cluster < len(prototypes):
        raise RegenerateError(f"--cluster {cluster}: {cls} has clusters 0 to {len(prototypes) - 1} at IPC {ipc}")
    model = where(settings["model"])
    if not model.is_dir():
        raise RegenerateError(
            f"the fine-tuned model {model} is missing; rerun the workflow's finetune rule to make it again"
        )
    check_same_model(record, model)

    on = device()
    if on.type == "cpu":
        torch.set_num_threads(settings["threads"])  # float sums on the CPU can round differently with other counts
    for line in environment_differences(record, on):
        print(f"note: {line}; the bytes may differ from the set's", file=sys.stderr)
    pipe = load_stable_diffusion(str(model), dtype=dtype_for(settings["dtype"], on, auto_bf16=False), img2img=True).to(
        on
    )
    set_scheduler(pipe, settings["scheduler"])
    pipe.set_progress_bar_config(disable=True)
    seeds = [image_seed(cls, k, seed) for k in range(len(prototypes))]
    images = synthesize(pipe, centres, [p["prompt"] for p in prototypes], seeds, settings, wanted={cluster})
    return resize_for_evaluation(images[cluster], settings["size"]), folder / f"{cluster}.png"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path, help="the run's results folder, results/<run>")
    parser.add_argument("--class", dest="cls", required=True, help="class folder name")
    parser.add_argument("--ipc", required=True, type=int)
    parser.add_argument("--seed", required=True, type=int, help="distillation seed")
    parser.add_argument("--cluster", required=True, type=int, help="the image's cluster: <cluster>.png in the set")
    parser.add_argument(
        "--strategy", default="prototype", help="prompt strategy of the set (distilled/vlcp-<strategy>)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="where to write the PNG (default <run>/regenerated/vlcp-<strategy>/ipc<N>/seed<S>/<class>/<cluster>.png); "
        "an existing file is not overwritten",
    )
    args = parser.parse_args(argv)
    if not args.run.is_dir():
        raise RegenerateError(f"--run {args.run} is not a folder; give the run's results folder (results_dir/run)")
    out = args.out or (
        args.run
        / "regenerated"
        / f"vlcp-{args.strategy}"
        / f"ipc{args.ipc}"
        / f"seed{args.seed}"
        / args.cls
        / f"{args.cluster}.png"
    )
    image, original = regenerate(args.run, args.cls, args.ipc, args.seed, args.cluster, args.strategy)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb") as handle:
        image.save(handle, format="PNG")
    made = hashlib.sha256(out.read_bytes()).hexdigest()
    if original.is_file():
        same = made == hashlib.sha256(original.read_bytes()).hexdigest()
        verdict = "identical to" if same else "DIFFERENT from"
        print(f"{out}: sha256 {made[:16]}, {verdict} {original}", file=sys.stderr)
    else:
        print(f"{out}: sha256 {made[:16]} ({original} is not in the set any more)", file=sys.stderr)


if __name__ == "__main__":
    run(main)

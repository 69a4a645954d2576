"""Remake one distilled image from a finished run: its saved centre and text prototype, the model and the
settings recorded beside the set, byte-identical to the image in the set.

Each image's generator is seeded from (class, cluster, seed) alone (``synthesize.image_seed``), and each
candidate of a set that keeps the best of K from (class, cluster, seed, candidate): any candidate, kept or
not, can be remade (``--candidate``). Float
kernels may round differently at another batch size, so the batch the image was made in is made again
(at most execution.synthesize.batch_size images) and only the asked-for image is kept; on the CPU it
runs with the job's recorded thread count. The same bytes need the same kind of device and the same
library versions as the run; both are compared with the set's record and a difference is reported.
"""

import argparse
import hashlib
import sys
from pathlib import Path

from vlcp import contract, names, provenance
from vlcp.atomic import atomic_write
from vlcp.cli import run
from vlcp.errors import VlcpError


class RegenerateError(VlcpError, ValueError):
    """A run, set or image that cannot be regenerated; the message names it and says what to do."""


def set_class_folder(run_dir, method, ipc, seed, cls):
    return Path(run_dir) / "distilled" / method / f"ipc{ipc}" / f"seed{seed}" / cls


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


def class_folder(path):
    """``((set, ipc<N>, seed<S>, class), run folder)`` of a class folder of a distilled set: as the set holds
    it, <run>/distilled/<set>/ipc<N>/seed<S>/<class>, or as its part's job wrote it,
    <run>/parts/distilled/<set>/ipc<N>/seed<S>/<part>/<class>."""
    parts = Path(path).parts
    if parts[-7:-5] == ("parts", "distilled"):
        return (*parts[-5:-2], parts[-1]), Path(*parts[:-7])
    return parts[-4:], Path(*parts[:-5])


def relocate(record, folder):
    """A function mapping a path as the run recorded it (relative to the folder Snakemake ran in) to where
    it is now, found from the class folder's own recorded path and where that folder is now."""
    recorded = Path(record["settings"]["out"])
    (tail, recorded_run), (here, run_now) = class_folder(recorded), class_folder(folder)
    if here != tail:
        raise RegenerateError(
            f"{folder / 'provenance.json'} records the set {recorded}, not {folder}; the run folder was edited"
        )

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
    """The model must be the one the set was made with (its recorded fingerprint)."""
    recorded = next((m for m in record.get("models", []) if "fingerprint" in m), None)
    if recorded is None:
        return
    now = provenance.folder_fingerprint(model)
    if now != recorded["fingerprint"]:
        raise RegenerateError(
            f"the model at {model} is not the one that made this set (its files changed since: "
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


def chosen_candidate(record, cluster):
    """The candidate a set of K > 1 candidates per prototype kept for ``cluster`` (0 for a set of one)."""
    choices = record["settings"].get("choices") or []
    return next((c["chosen"] for c in choices if c["cluster"] == cluster), 0)


def regenerate(run_dir, cls, ipc, seed, cluster, strategy="prototype", method=None, candidate=None):
    """``(image, path of the set's image or None)``: the PIL image (at the set's saved size) of one cluster
    of the VLCP set of prompt strategy ``strategy``, or of the set ``method`` names (vlcp-<strategy>-k<K>,
    d4m); in a set of K > 1 candidates, of candidate ``candidate`` (default: the one the set kept). The path
    is None for a candidate the set did not keep."""
    import torch

    from vlcp.models import device, dtype_for, load_stable_diffusion
    from vlcp.synthesize import candidate_inputs, resize_for_evaluation, set_scheduler, synthesize

    folder = set_class_folder(run_dir, method or names.vlcp_method(strategy), ipc, seed, cls)
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
    K = settings.get("candidates", 1)
    kept = chosen_candidate(record, cluster)
    candidate = kept if candidate is None else candidate
    if not 0 <= candidate < K:
        raise RegenerateError(f"--candidate {candidate}: the set made {K} candidate(s) per prototype, 0 to {K - 1}")
    model = where(settings["model"])
    recorded_local = any("fingerprint" in m for m in record.get("models", []))
    if recorded_local and not model.is_dir():
        raise RegenerateError(
            f"the model {model} that made the set is missing; rerun the workflow's rule that makes it (finetune "
            "for a VLCP set)"
        )
    if model.is_dir():
        check_same_model(record, model)

    on = device()
    if on.type == "cpu":
        torch.set_num_threads(settings["threads"])  # float sums on the CPU can round differently with other counts
    for line in environment_differences(record, on):
        print(f"note: {line}; the bytes may differ from the set's", file=sys.stderr)
    name = str(model) if model.is_dir() else settings["model"]
    pipe = load_stable_diffusion(
        name,
        dtype=dtype_for(settings["dtype"], on, auto_bf16=False),
        img2img=True,
        variant=settings.get("variant"),
        safety_checker=settings.get("safety_checker", False),
    ).to(on)
    set_scheduler(pipe, settings["scheduler"])
    pipe.set_progress_bar_config(disable=True)
    _, item_centres, prompts, seeds = candidate_inputs(cls, seed, centres, prototypes, K)
    wanted = cluster * K + candidate
    images = synthesize(pipe, item_centres, prompts, seeds, settings, wanted={wanted})
    original = folder / f"{cluster}.png" if candidate == kept else None
    return resize_for_evaluation(images[wanted], settings["size"]), original


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path, help="the run's results folder, results/<run>")
    parser.add_argument("--class", dest="cls", required=True, help="class folder name")
    parser.add_argument("--ipc", required=True, type=int)
    parser.add_argument("--seed", required=True, type=int, help="distillation seed")
    parser.add_argument("--cluster", required=True, type=int, help="the image's cluster: <cluster>.png in the set")
    parser.add_argument(
        "--strategy", default="prototype", help="prompt strategy of a VLCP set (distilled/vlcp-<strategy>)"
    )
    parser.add_argument(
        "--method",
        help="the set's name in distilled/ instead: vlcp-<strategy>-k<K> (best of K candidates) or d4m",
    )
    parser.add_argument(
        "--candidate",
        type=int,
        help="in a set of K > 1 candidates per prototype: the candidate to remake (default: the one the set kept)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="where to write the PNG (default <run>/regenerated/<set>/ipc<N>/seed<S>/<class>/<cluster>.png, "
        "<cluster>-<candidate>.png with --candidate); an existing file is not overwritten",
    )
    args = parser.parse_args(argv)
    if not args.run.is_dir():
        raise RegenerateError(f"--run {args.run} is not a folder; give the run's results folder (results_dir/run)")
    method = args.method or names.vlcp_method(args.strategy)
    name = f"{args.cluster}.png" if args.candidate is None else f"{args.cluster}-{args.candidate}.png"
    out = args.out or (args.run / "regenerated" / method / f"ipc{args.ipc}" / f"seed{args.seed}" / args.cls / name)
    image, original = regenerate(
        args.run, args.cls, args.ipc, args.seed, args.cluster, method=method, candidate=args.candidate
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb") as handle:
        image.save(handle, format="PNG")
    made = hashlib.sha256(out.read_bytes()).hexdigest()
    if original is None:
        print(f"{out}: sha256 {made[:16]} (a candidate the set did not keep)", file=sys.stderr)
    elif original.is_file():
        same = made == hashlib.sha256(original.read_bytes()).hexdigest()
        verdict = "identical to" if same else "DIFFERENT from"
        print(f"{out}: sha256 {made[:16]}, {verdict} {original}", file=sys.stderr)
    else:
        print(f"{out}: sha256 {made[:16]} ({original} is not in the set any more)", file=sys.stderr)


if __name__ == "__main__":
    run(main)

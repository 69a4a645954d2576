"""Package a distilled set for sharing: a Hugging Face ``imagefolder`` with metadata and a dataset card;
and all captions of a run as one JSON-lines file.

A set exported to ``<out>/`` holds the images in class folders, ``metadata.jsonl`` (a row per image:
file_name, label, class, label_text, prompt, source_image, cluster_size, seed), ``classes.txt`` (the
label texts in label order, for ``datasets.ClassLabel(names_file=...)``) and ``README.md``, a dataset
card: the method and every setting that made the set (from the provenance records of its stages), the
models by hub id or fingerprint, the set's rows of the accuracy table, and the package versions. The
licence field is left for the one who publishes it.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

from vlcp import contract, names, provenance
from vlcp.atomic import atomic_dir, atomic_write
from vlcp.cli import run
from vlcp.settings import schema, section

METADATA_KEYS = ("file_name", "label", "class", "label_text", "prompt", "source_image", "cluster_size", "seed")
# Beside a stage's config section (config/schema.yaml), the settings that say which set a job made and
# where it ran (synthesis records its device and CPU threads, for regeneration).
SET_SETTINGS = ("method", "ipc", "seed", "strategy", "size", "device", "threads")
STAGE_ORDER = ("index", "caption", "finetune", "encode", "cluster", "text_prototype", "synthesize", "select")


def upstream_records(record, seen=None):
    """The provenance records a record's settings lead to (files it read that have records of their own),
    the first record of each stage, depth first: the chain of stages that made an output."""
    seen = {} if seen is None else seen
    seen.setdefault(record["stage"], record)
    for value in record["settings"].values():
        first = value[0] if isinstance(value, list) and value else value
        if not isinstance(first, str) or "/" not in first:
            continue
        path = Path(first)
        if not path.exists():
            continue
        upstream = provenance.read_record(path)
        if upstream and upstream["stage"] not in seen:
            upstream_records(upstream, seen)
    return seen


def card_settings(stage, settings):
    """What a stage's record says of how the set was made: the keys of the stage's config section and of
    its ``execution`` section, as the schema defines them, and which set it made; not the files its job
    read and wrote."""
    name = "dataset" if stage == "index" else stage  # the index reads the dataset section
    known = [*section(name), *section(name, execution=True)] if name in schema()["properties"] else []
    return {k: v for k, v in settings.items() if k in (*SET_SETTINGS, *known)}


def metadata_rows(listed, classes, seed):
    """A metadata row per image of a set (``contract.read_manifest``'s list), from the class folders' records."""
    labels = {cls: (i, text) for i, (cls, text) in enumerate(classes)}
    records, rows = {}, []
    for cls, path in listed:
        if cls not in records:
            records[cls] = provenance.read_record(path.parent) or {"stage": None, "settings": {}}
            record = records[cls]
            if record["stage"] == "synthesize":
                clusters, _ = contract.read_clusters(record["settings"]["clusters"])
                record["clusters"] = clusters["members"]
                record["prototypes"] = contract.read_prototypes(record["settings"]["prototypes"])
        record = records[cls]
        k = int(path.stem) if path.stem.isdigit() else None
        prompt = source = size = None
        if record["stage"] == "synthesize" and k is not None:
            prompt, source, size = (
                record["prototypes"][k]["prompt"],
                record["prototypes"][k]["image"],
                len(record["clusters"][k]),
            )
        elif record["stage"] == "select" and k is not None:
            source = record["settings"]["chosen"][k]
        label, text = labels[cls]
        rows.append(
            {
                "file_name": f"{cls}/{path.name}",
                "label": label,
                "class": cls,
                "label_text": text,
                "prompt": prompt,
                "source_image": source,
                "cluster_size": size,
                "seed": seed,
            }
        )
    return rows, records


def yaml_block(value):
    import yaml

    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=120).rstrip()


def size_category(n):
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def accuracy_lines(accuracy, method, ipc, seed):
    """The set's rows of the run's accuracy table, as a Markdown table."""
    frame = contract.read_accuracy(accuracy)
    mine = frame[
        (frame["method"] == method) & (frame["ipc"].astype(str) == str(ipc)) & (frame["seed"].astype(str) == str(seed))
    ]
    if mine.empty:
        return ["No evaluation of this set is in the run's accuracy table."]
    lines = ["| protocol | model | eval seed | top-1 best | top-1 last |", "|---|---|---|---|---|"]
    for r in mine.itertuples():
        lines.append(f"| {r.protocol} | {r.model} | {r.eval_seed} | {r.top1_best:.2f} | {r.top1_last:.2f} |")
    return lines


def dataset_card(method, ipc, seed, run_name, classes, rows, records, accuracy):
    """The README.md of an exported set, in the Hugging Face dataset-card format."""
    first = next(iter(records.values()))
    chain = upstream_records(first) if first.get("stage") else {}
    header = {
        "pretty_name": f"{run_name}: {method}, IPC {ipc}, seed {seed}",
        "task_categories": ["image-classification"],
        "tags": ["dataset-distillation", "coreset" if method in names.BASELINES else "synthetic", "vlcp"],
        "size_categories": [size_category(len(rows))],
        "dataset_info": {
            "features": [
                {"name": "image", "dtype": "image"},
                {
                    "name": "label",
                    "dtype": {"class_label": {"names": {str(i): text for i, (_, text) in enumerate(classes)}}},
                },
                *(
                    {"name": k, "dtype": "int64" if k in ("cluster_size", "seed") else "string"}
                    for k in METADATA_KEYS[2:]
                ),
            ]
        },
    }
    stages = sorted(chain, key=lambda stage: STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER))
    models = []
    for stage in stages:
        for model in chain[stage].get("models", []):
            name = model.get("hub_id") or f"{model['path']} (fingerprint {model['fingerprint'][:16]})"
            models.append(f"- {stage}: {name}")
    made = [
        f"### {stage}\n\n```yaml\n{yaml_block(card_settings(stage, chain[stage]['settings']))}\n```\n"
        for stage in stages
    ]
    packages = first.get("packages", {})
    lines = [
        "---",
        "# license: set the licence of this set before you publish it; it derives from the source dataset's images",
        "# and the models' licences.",
        yaml_block(header),
        "---",
        "",
        f"# {run_name}: {method}, {ipc} images per class, seed {seed}",
        "",
        f"A distilled image-classification set of {len(classes)} classes and {len(rows)} images, made by the vlcp "
        f"workflow (method `{method}`, distillation seed {seed}).",
        "",
        "## Load it",
        "",
        "```python",
        "from datasets import ClassLabel, load_dataset",
        "",
        'ds = load_dataset("imagefolder", data_dir="<this folder>", split="train")',
        'ds = ds.cast_column("label", ClassLabel(names_file="<this folder>/classes.txt"))',
        "```",
        "",
        "Columns: "
        + ", ".join(f"`{k}`" for k in ("image", *METADATA_KEYS[1:]))
        + ". `prompt` is the text prototype the "
        "image was generated from, `source_image` the training image whose caption it was (for a real-image baseline: "
        "the chosen image), `cluster_size` the images of its cluster.",
        "",
        "## Accuracy",
        "",
        "Rows of the run's accuracy table for this set (top-1 %, real val split):",
        "",
        *accuracy_lines(accuracy, method, ipc, seed),
        "",
        "## Models",
        "",
        *(models or ["- none (images chosen from the real train split)"]),
        "",
        "## How it was made",
        "",
        "The settings of each stage, from the provenance records beside its outputs (first to last):",
        "",
        *made,
        "",
        "## Provenance",
        "",
        f"Made {first.get('created', 'at an unrecorded time')} with "
        + ", ".join(f"{k} {v}" for k, v in packages.items() if v)
        + ".",
        "",
        "## Licence",
        "",
        "Not set. The images derive from the source dataset and, for synthesized sets, from the diffusion and "
        "captioning models; set `license` in the header to terms compatible with theirs.",
        "",
    ]
    return "\n".join(lines)


def export_set(manifest, method, ipc, seed, class_table, accuracy, run_name, out):
    """Write the exported set to ``out`` (a new folder); return its row count."""
    classes = contract.read_class_table(class_table)
    listed = contract.read_manifest(manifest)
    rows, records = metadata_rows(listed, classes, seed)
    with atomic_dir(out) as tmp:
        for (cls, path), row in zip(listed, rows):
            target = tmp / row["file_name"]
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(path, target)
        contract.write_jsonl(tmp / "metadata.jsonl", rows)
        (tmp / "classes.txt").write_text("".join(f"{text}\n" for _, text in classes))
        (tmp / "README.md").write_text(dataset_card(method, ipc, seed, run_name, classes, rows, records, accuracy))
    return len(rows)


def export_captions(captions, class_table, out):
    """Every caption of a run as one JSON-lines file: image, class, label, label_text, caption."""
    classes = contract.read_class_table(class_table)
    if len(captions) != len(classes):
        raise contract.ContractError(f"{len(captions)} caption files for the {len(classes)} classes of {class_table}")
    count = 0
    with atomic_write(out) as handle:
        for label, ((cls, text), path) in enumerate(zip(classes, captions)):
            for row in contract.read_captions(path):
                handle.write(
                    json.dumps(
                        {
                            "image": row["image"],
                            "class": cls,
                            "label": label,
                            "label_text": text,
                            "caption": row["caption"],
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
                count += 1
    return count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("set", help="one distilled set as a Hugging Face imagefolder with a dataset card")
    one.add_argument("--manifest", required=True, type=Path, help="the set's manifest (<set>.manifest.tsv)")
    one.add_argument("--method", required=True)
    one.add_argument("--ipc", required=True)
    one.add_argument("--seed", required=True, type=int)
    one.add_argument("--class-table", required=True, type=Path, help="the run's index/classes.tsv")
    one.add_argument("--accuracy", required=True, type=Path, help="the run's accuracy.csv")
    one.add_argument("--run-name", required=True)
    one.add_argument("--out", required=True, type=Path)
    captions = commands.add_parser("captions", help="every caption of a run as one JSON-lines file")
    captions.add_argument("--captions", nargs="+", required=True, type=Path, help="per class, in label order")
    captions.add_argument("--class-table", required=True, type=Path)
    captions.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    if args.command == "captions":
        count = export_captions(args.captions, args.class_table, args.out)
        print(f"{count} captions written to {args.out}", file=sys.stderr)
        return
    count = export_set(
        args.manifest, args.method, args.ipc, args.seed, args.class_table, args.accuracy, args.run_name, args.out
    )
    print(f"{count} images exported to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    run(main)

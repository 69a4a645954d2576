"""Reading and writing of the files that pass between rules: the one place that defines their format.

Every writer is atomic (see ``vlcp.atomic``); every reader names the file and
the line when the content is not what the contract says.
"""

import csv
import json
from pathlib import Path

from vlcp.atomic import atomic_write

INDEX_KEYS = ("image", "class", "label", "width", "height", "mode")
REJECTED_COLUMNS = ("image", "reason")
CLASS_TABLE_COLUMNS = ("class", "label", "train_images", "val_images", "rejected_files")


class ContractError(ValueError):
    """A results file whose content breaks the contract; the message names the file."""


def write_jsonl(path, rows):
    with atomic_write(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path, required):
    """Rows of a JSON-lines file, each checked for the ``required`` keys."""
    rows = []
    with Path(path).open() as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                raise ContractError(f"{path}, line {lineno}: empty line; the file was edited or cut short. Delete it and rerun the rule that makes it.")
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ContractError(f"{path}, line {lineno}: not JSON ({err}); delete the file and rerun the rule that makes it.") from None
            missing = [k for k in required if k not in row]
            if missing:
                raise ContractError(f"{path}, line {lineno}: missing key(s) {missing}; delete the file and rerun the rule that makes it.")
            rows.append(row)
    return rows


def write_index(path, records):
    """Write one class's image index of one split: a JSON line per image, in index order."""
    write_jsonl(path, ({k: r[k] for k in INDEX_KEYS} for r in records))


def read_index(path):
    """One class's image index of one split, as written by ``write_index``."""
    return read_jsonl(path, INDEX_KEYS)


def write_tsv(path, header, rows):
    with atomic_write(path) as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_rejected(path, rejected):
    """Write ``(image, reason)`` pairs as a TSV with a header line."""
    write_tsv(path, REJECTED_COLUMNS, rejected)


def write_class_table(path, rows):
    """Write the run's per-class summary: label text and image counts."""
    write_tsv(path, CLASS_TABLE_COLUMNS, rows)


def read_rejected(path):
    """The ``(image, reason)`` pairs of a rejected-files TSV."""
    with Path(path).open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    if not rows or tuple(rows[0]) != REJECTED_COLUMNS:
        raise ContractError(f"{path}: expected a header line 'image<TAB>reason'")
    return [tuple(row) for row in rows[1:]]


CAPTION_KEYS = ("image", "caption")


def write_captions(path, rows):
    """Write one class's captions: a JSON line ``{"image", "caption"}`` per image, in index order."""
    write_jsonl(path, ({"image": r["image"], "caption": r["caption"]} for r in rows))


def read_captions(path, images=None):
    """One class's captions; if ``images`` (index order) is given, they must match it exactly."""
    rows = read_jsonl(path, CAPTION_KEYS)
    if images is not None:
        have = [r["image"] for r in rows]
        if have != list(images):
            missing = sorted(set(images) - set(have))
            extra = sorted(set(have) - set(images))
            raise ContractError(
                f"{path} does not match the image index: {len(missing)} image(s) without a caption "
                f"(first: {missing[:3]}), {len(extra)} caption(s) for images not in the index (first: {extra[:3]}). "
                "Delete the file and rerun; Snakemake's caption rule will write it again."
            )
    return rows


def write_latents(path, tensors, images):
    """Write a class's latents (name -> tensor, first axis in index order) with the image order."""
    from safetensors.torch import save

    blob = save({k: v.contiguous() for k, v in tensors.items()}, metadata={"images": json.dumps(list(images))})
    with atomic_write(path, "wb") as handle:
        handle.write(blob)


def read_latents(path):
    """``(tensors, images)`` of a latents file written by ``write_latents``."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            images = json.loads((handle.metadata() or {}).get("images", "null"))
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except (OSError, ValueError, json.JSONDecodeError) as err:
        raise ContractError(f"{path}: not a readable latents file ({err}); delete it and rerun the rule that makes it.") from None
    if not isinstance(images, list) or any(len(images) != len(t) for t in tensors.values()):
        raise ContractError(f"{path}: the image list in its metadata does not match its tensors; delete it and rerun.")
    return tensors, images

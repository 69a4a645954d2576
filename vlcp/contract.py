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

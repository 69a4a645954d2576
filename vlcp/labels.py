"""Class label texts: the shipped ImageNet wnid table, folder names, or a user's TSV."""

import csv
import functools
from importlib import resources
from pathlib import Path

from vlcp.errors import VlcpError


class LabelError(VlcpError, ValueError):
    """A class without a label text; the message says where to give one."""


def read_label_table(path):
    """A TSV of ``<class>\\t<label text>`` lines (a ``wnid\\tlabel`` header is skipped) as a dict."""
    path = Path(path)
    if not path.is_file():
        raise LabelError(
            f"label table {path} does not exist; set dataset.label_table to 'folder', 'imagenet' or a TSV file"
        )
    table = {}
    with path.open(newline="") as handle:
        for lineno, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or row[0].startswith("#") or (lineno == 1 and row[0] in ("wnid", "class")):
                continue
            if len(row) != 2 or not row[1].strip():
                raise LabelError(f"{path}, line {lineno}: expected '<class><TAB><label text>', got {row!r}")
            table[row[0]] = row[1].strip()
    return table


@functools.cache
def imagenet_labels():
    """The ImageNet-1K wnid -> label text table shipped with vlcp (1000 entries)."""
    with resources.as_file(resources.files("vlcp.data").joinpath("imagenet_labels.tsv")) as path:
        return read_label_table(path)


def label_text(cls, label_table, override=None):
    """The label text of class folder ``cls``: ``override`` if given, else from ``label_table``.

    ``label_table`` is 'imagenet', 'folder' or the path of a TSV file.
    """
    if override:
        return override
    if label_table == "folder":
        return cls.replace("_", " ")
    table = imagenet_labels() if label_table == "imagenet" else read_label_table(label_table)
    if cls not in table:
        source = "the ImageNet wnid table" if label_table == "imagenet" else str(label_table)
        raise LabelError(
            f"class {cls!r} has no label text in {source}; add it under dataset.labels in the config, "
            "or set dataset.label_table to 'folder' to use folder names"
        )
    return table[cls]

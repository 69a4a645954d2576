"""Class label texts: the shipped ImageNet wnid table, folder names, or a user's TSV."""

import functools
from importlib import resources
from pathlib import Path

from vlcp.errors import VlcpError


class LabelError(VlcpError, ValueError):
    """A class without a label text; the message says where to give one."""


def read_label_table(path):
    """A TSV of ``<class>\t<label text>`` lines as a dict; a ``wnid\tlabel`` or ``class\t...`` first line is
    a header, and ``#`` lines are comments. Any other line that is not a class, one tab and a label text
    raises LabelError naming the file, the line number and what is wrong there."""
    path = Path(path)
    if not path.is_file():
        raise LabelError(
            f"label table {path} does not exist; set dataset.label_table to 'folder', 'imagenet' or a TSV file"
        )
    table, first_seen = {}, {}
    with path.open(encoding="utf-8", newline="") as handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            where = f"{path}, line {lineno}"
            if line.startswith("#") or (lineno == 1 and line.split("\t", 1)[0] in ("wnid", "class")):
                continue
            if not line.strip():
                raise LabelError(f"{where} is empty; remove it (each line is '<class><TAB><label text>')")
            fields = line.split("\t")
            if len(fields) != 2:
                wrong = "has no tab" if len(fields) == 1 else f"has {len(fields) - 1} tabs"
                raise LabelError(f"{where} {wrong}: {line!r}; each line is '<class><TAB><label text>'")
            cls, label = fields
            if not cls.strip():
                raise LabelError(f"{where} has no class name before its tab: {line!r}")
            if not label.strip():
                raise LabelError(f"{where} has no label text after its tab: {line!r}")
            if cls in first_seen:
                raise LabelError(f"{where} names class {cls!r} again (first on line {first_seen[cls]}); keep one")
            first_seen[cls] = lineno
            table[cls] = label.strip()
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

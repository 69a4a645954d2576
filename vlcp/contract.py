"""Reading and writing of the files that pass between rules: the one place that defines their format.

Every writer is atomic (see ``vlcp.atomic``); every reader names the file and
the line when the content is not what the contract says.
"""

import csv
import hashlib
import json
from pathlib import Path

from vlcp.atomic import atomic_write
from vlcp.errors import VlcpError

INDEX_KEYS = ("image", "class", "label", "width", "height", "mode")
REJECTED_COLUMNS = ("image", "reason")
CLASS_TABLE_COLUMNS = ("class", "label", "train_images", "val_images", "rejected_files")


class ContractError(VlcpError, ValueError):
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
                raise ContractError(
                    f"{path}, line {lineno}: empty line; the file was edited or "
                    "cut short. Delete it and rerun the rule that makes it."
                )
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ContractError(
                    f"{path}, line {lineno}: not JSON ({err}); delete the file and rerun the rule that makes it."
                ) from None
            missing = [k for k in required if k not in row]
            if missing:
                raise ContractError(
                    f"{path}, line {lineno}: missing key(s) {missing}; "
                    "delete the file and rerun the rule that makes it."
                )
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


def read_class_table(path):
    """``[(class, label text)]`` in label order, from the run's index/classes.tsv."""
    with Path(path).open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    if not rows or tuple(rows[0]) != CLASS_TABLE_COLUMNS:
        raise ContractError(f"{path}: expected the header {'<TAB>'.join(CLASS_TABLE_COLUMNS)}; rerun the index rule")
    return [(row[0], row[1]) for row in rows[1:]]


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


# A class's latents file (stage 4): safetensors with the image list in its metadata (key ``images``) and
# up to four tensors, first axis in index order. LATENTS are what clustering, the baselines and D4M read;
# TRAIN_LATENTS the fine-tune's centre crops, stored only where they differ from LATENTS; FLIPPED marks
# the same of the mirrored images, which random flips from latents read.
LATENTS = "latents"
TRAIN_LATENTS = "train_latents"
FLIPPED = "_flipped"


def latents_tensors(latents, train=None, train_flipped=None):
    """The tensors of a latents file by name: ``latents``; the fine-tune's crops ``train`` when they differ
    from those (None: they are ``latents``); ``train_flipped`` their mirrored images, if stored."""
    tensors = {LATENTS: latents}
    if train is not None:
        tensors[TRAIN_LATENTS] = train
    if train_flipped is not None:
        tensors[training_latents_name(tensors, flip=True)] = train_flipped
    return tensors


def training_latents_name(names, flip=False):
    """Which tensor of a latents file (its tensor ``names``) fine-tuning reads: the centre crops, where they
    were stored apart from the clustering latents, else those; their mirrored images with ``flip``."""
    name = TRAIN_LATENTS if TRAIN_LATENTS in names else LATENTS
    return name + FLIPPED if flip else name


def write_latents(path, tensors, images):
    """Write a class's latents (name -> tensor, see ``latents_tensors``) with the image order."""
    from safetensors.torch import save

    blob = save({k: v.contiguous() for k, v in tensors.items()}, metadata={"images": json.dumps(list(images))})
    with atomic_write(path, "wb") as handle:
        handle.write(blob)


# safetensors writes the keys of its metadata in no fixed order, so a file with two keys has no stable
# bytes: a network's record goes into one key as canonical JSON.
RECORD_KEY = "vlcp"


def write_network(path, state, record):
    """Write a trained network's state dict with ``record`` (a JSON-able dict) in its metadata."""
    from safetensors.torch import save

    blob = save(
        {k: v.detach().to("cpu").contiguous() for k, v in state.items()},
        metadata={RECORD_KEY: json.dumps(record, sort_keys=True)},
    )
    with atomic_write(path, "wb") as handle:
        handle.write(blob)


def read_network_record(path):
    """The record ``write_network`` stored beside a network's weights."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return json.loads((handle.metadata() or {})[RECORD_KEY])


def read_latents(path):
    """``(tensors, images)`` of a latents file written by ``write_latents``."""
    latents = LatentsFile(path)
    return latents.read_all(), latents.images


class LatentsFile:
    """A latents file read one row at a time: memory stays O(rows read), not O(file). Each read opens the
    file and copies one row out of it, so nothing of the file stays mapped between reads."""

    def __init__(self, path):
        self.path = Path(path)
        with self.open() as handle:
            try:
                self.images = json.loads((handle.metadata() or {}).get("images", "null"))
            except json.JSONDecodeError:
                self.images = None
            self.tensors = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
        if not isinstance(self.images, list) or any(shape[0] != len(self.images) for shape in self.tensors.values()):
            raise ContractError(
                f"{path}: the image list in its metadata does not match its tensors; delete it and rerun."
            )

    def open(self):
        from safetensors import SafetensorError, safe_open

        try:
            return safe_open(str(self.path), framework="pt")
        except (OSError, SafetensorError) as err:
            if "not fully covered" in str(err):
                problem = f"{self.path} is shorter than its header says"
            else:
                problem = f"{self.path}: not a readable latents file ({err})"
            raise ContractError(f"{problem}; delete it and rerun the rule that makes it.") from None

    def __len__(self):
        return len(self.images)

    def row(self, name, index):
        """Tensor ``name``'s row ``index``, read from disk."""
        with self.open() as handle:
            return handle.get_slice(name)[index : index + 1][0].clone()

    def read_all(self):
        with self.open() as handle:
            return {name: handle.get_tensor(name) for name in handle.keys()}


def write_clusters(json_path, centres_path, clusters, centres):
    """Write a class's clusters: ``members`` (lists of image paths), ``outliers`` and notes as JSON,
    and the image prototypes (k-means centres, IPC x C x H x W) as safetensors beside it."""
    from safetensors.torch import save

    if len(clusters["members"]) != len(centres):
        raise ValueError(f"{len(clusters['members'])} clusters but {len(centres)} centres")
    with atomic_write(centres_path, "wb") as handle:
        handle.write(save({"centres": centres.contiguous()}))
    with atomic_write(json_path) as handle:
        json.dump(clusters, handle, indent=1)
        handle.write("\n")


def read_clusters(json_path, centres_path=None):
    """``(clusters, centres)``; ``centres`` is None unless ``centres_path`` is given."""
    try:
        clusters = json.loads(Path(json_path).read_text())
    except json.JSONDecodeError as err:
        raise ContractError(f"{json_path}: not JSON ({err}); delete it and rerun the cluster rule.") from None
    if not isinstance(clusters, dict) or not {"members", "outliers"} <= set(clusters):
        raise ContractError(
            f"{json_path}: expected keys 'members' and 'outliers'; delete it and rerun the cluster rule."
        )
    centres = None
    if centres_path is not None:
        from safetensors.torch import load_file

        centres = load_file(str(centres_path))["centres"]
        if len(centres) != len(clusters["members"]):
            raise ContractError(
                f"{centres_path} holds {len(centres)} centres for {len(clusters['members'])} clusters in {json_path}"
            )
    return clusters, centres


PROTOTYPE_KEYS = ("prompt", "image", "keywords", "nonrepresentative")


def write_prototypes(path, prototypes):
    """Write a class's text prototypes: one entry per cluster with prompt, image, keywords, nonrepresentative."""
    rows = [json.dumps({k: p[k] for k in PROTOTYPE_KEYS}, ensure_ascii=False) for p in prototypes]
    with atomic_write(path) as handle:
        handle.write("[\n" + ",\n".join(rows) + "\n]\n")


def read_prototypes(path):
    """The list written by ``write_prototypes``."""
    try:
        rows = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ContractError(f"{path}: not JSON ({err}); delete it and rerun the text_prototype rule.") from None
    if not isinstance(rows, list) or any(set(PROTOTYPE_KEYS) - set(r) for r in rows):
        raise ContractError(f"{path}: expected a list of objects with keys {PROTOTYPE_KEYS}")
    return rows


# A distilled set: an ImageFolder <set>/<class>/<k>.png with IPC images per class, and beside it
# <set>.manifest.tsv, the list of its images with their sizes and checksums, written once the set is whole.
# An external set's manifest lists absolute paths into the folder where it lies (vlcp.external).
# Every reader lists a set the same way: classes in label order, images in natural order (0, 1, ..., 10).
DISTILLED_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MANIFEST_COLUMNS = ("class", "image", "bytes", "sha256")
MANIFEST_SUFFIX = ".manifest.tsv"


def natural_key(path):
    """Image names in natural order: '2.png' before '10.png' (shorter numbers first), then by name."""
    return (len(path.stem), path.stem, path.suffix)


def distilled_images(folder, classes):
    """``(class, path)`` of every image of a distilled ImageFolder, classes in label order, images in
    natural order; a class without a folder or without images is an error that names it."""
    rows = []
    for cls in classes:
        sub = Path(folder) / cls
        if not sub.is_dir():
            raise ContractError(f"{folder} has no folder for class {cls!r}; rerun the rule that makes the set.")
        images = sorted(
            (
                p
                for p in sub.iterdir()
                if p.suffix.lower() in DISTILLED_SUFFIXES and not p.name.startswith(".") and p.is_file()
            ),
            key=natural_key,
        )
        if not images:
            raise ContractError(f"{sub} holds no images; rerun the rule that makes it (delete the folder first)")
        rows += [(cls, path) for path in images]
    return rows


def manifest_path(folder):
    return Path(f"{Path(folder)}{MANIFEST_SUFFIX}")


def set_folder(manifest):
    """The distilled set a manifest lists: its path without the manifest suffix."""
    name = str(manifest)
    if not name.endswith(MANIFEST_SUFFIX):
        raise ContractError(f"{manifest}: a manifest's name ends in {MANIFEST_SUFFIX}")
    return Path(name[: -len(MANIFEST_SUFFIX)])


def write_manifest(folder, classes, out=None):
    """List a distilled set's images with size and sha256 in ``<folder>.manifest.tsv`` (or ``out``);
    return the rows."""
    return write_listed_manifest(distilled_images(folder, classes), out or manifest_path(folder), folder)


def write_listed_manifest(listed, out, folder=None):
    """A manifest of ``(class, path)`` pairs: paths relative to ``folder``, or absolute where no folder is
    given (an external set, read where it is); return the rows."""
    rows = []
    for cls, path in listed:
        data = Path(path).read_bytes()
        name = Path(path).relative_to(folder).as_posix() if folder is not None else str(Path(path).absolute())
        rows.append((cls, name, len(data), hashlib.sha256(data).hexdigest()))
    write_tsv(out, MANIFEST_COLUMNS, rows)
    return rows


def read_manifest(manifest):
    """``(class, path)`` of every image a manifest lists, in its order, each checked to be there with the
    size the manifest gives (a set changed after it was listed is named, not trained on)."""
    folder = set_folder(manifest)
    with Path(manifest).open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    if not rows or tuple(rows[0]) != MANIFEST_COLUMNS:
        raise ContractError(f"{manifest}: expected the header {'<TAB>'.join(MANIFEST_COLUMNS)}; delete it and rerun.")
    listed = []
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) != len(MANIFEST_COLUMNS):
            raise ContractError(
                f"{manifest}, line {lineno}: expected {len(MANIFEST_COLUMNS)} columns; delete it and rerun."
            )
        cls, image, size = row[0], folder / row[1], row[2]
        if not image.is_file() or str(image.stat().st_size) != size:
            raise ContractError(
                f"{image} is missing or not the file {manifest} lists (line {lineno}); the set was "
                "changed after it was made. Delete the set and its manifest and rerun."
            )
        listed.append((cls, image))
    return listed


ACCURACY_COLUMNS = ("protocol", "method", "ipc", "seed", "model", "eval_seed", "top1_best", "top1_last")


def write_accuracy(path, rows):
    """Write accuracy rows as CSV: the contract columns first, then any settings columns."""
    missing = sorted({c for row in rows for c in ACCURACY_COLUMNS if c not in row})
    if missing:
        raise ValueError(f"accuracy rows for {path} lack the contract column(s) {missing}")
    extra = [k for k in rows[0] if k not in ACCURACY_COLUMNS]
    with atomic_write(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*ACCURACY_COLUMNS, *extra], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def read_accuracy(path):
    """Accuracy rows of a CSV written by ``write_accuracy`` (as a pandas DataFrame)."""
    import pandas as pd

    frame = pd.read_csv(path, dtype={"ipc": str})
    missing = [c for c in ACCURACY_COLUMNS if c not in frame.columns]
    if missing:
        raise ContractError(f"{path}: missing column(s) {missing}")
    return frame

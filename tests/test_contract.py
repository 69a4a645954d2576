"""The files that pass between rules, read and written in vlcp.contract: a distilled set is listed one
way (classes in label order, images in natural order) by every reader, through its manifest."""

import pytest
import torch
from PIL import Image

from conftest import write_class_latents
from vlcp import contract


def make_set(folder, classes, count):
    for cls in classes:
        (folder / cls).mkdir(parents=True)
        for k in range(count):
            Image.new("RGB", (4, 4), (k, 0, 0)).save(folder / cls / f"{k}.png")


def test_a_distilled_set_is_listed_in_label_order_and_natural_image_order(tmp_path):
    folder = tmp_path / "ipc12"
    make_set(folder, ["b", "a"], 12)
    (folder / "a" / ".hidden.png").write_bytes(b"not an image")
    (folder / "a" / "notes.txt").write_text("not an image")
    listed = contract.distilled_images(folder, ["b", "a"])
    assert [cls for cls, _ in listed] == ["b"] * 12 + ["a"] * 12
    assert [path.name for _, path in listed[:12]] == [f"{k}.png" for k in range(12)]  # 2 before 10


def test_the_manifest_lists_the_set_and_names_a_file_changed_since(tmp_path):
    folder = tmp_path / "set"
    make_set(folder, ["b", "a"], 3)
    rows = contract.write_manifest(folder, ["b", "a"])
    manifest = tmp_path / "set.manifest.tsv"
    assert manifest.read_text().splitlines()[0] == "class\timage\tbytes\tsha256"
    assert [r[:2] for r in rows] == [
        ("b", "b/0.png"),
        ("b", "b/1.png"),
        ("b", "b/2.png"),
        ("a", "a/0.png"),
        ("a", "a/1.png"),
        ("a", "a/2.png"),
    ]
    assert contract.read_manifest(manifest) == contract.distilled_images(folder, ["b", "a"])
    (folder / "a" / "1.png").write_bytes(b"short")
    with pytest.raises(contract.ContractError, match=r"a/1.png is missing or not the file"):
        contract.read_manifest(manifest)


def test_a_set_missing_a_class_or_its_images_is_named(tmp_path):
    folder = tmp_path / "set"
    make_set(folder, ["a"], 2)
    with pytest.raises(contract.ContractError, match=r"no folder for class 'b'"):
        contract.distilled_images(folder, ["a", "b"])
    (folder / "b").mkdir()
    with pytest.raises(contract.ContractError, match=r"set/b holds no images"):
        contract.write_manifest(folder, ["a", "b"])
    assert not (tmp_path / "set.manifest.tsv").exists()


def test_latents_file_rows_equal_the_whole_file(tmp_path):
    tensors, images = write_class_latents(tmp_path / "a.safetensors", 7, seed=1)
    lazy = contract.LatentsFile(tmp_path / "a.safetensors")
    assert lazy.images == images and len(lazy) == 7
    for name, whole in tensors.items():
        for i in range(7):
            row = lazy.row(name, i)
            assert row.dtype == whole.dtype and torch.equal(row, whole[i])


def test_a_cut_latents_file_is_named(tmp_path):
    path = tmp_path / "cut.safetensors"
    write_class_latents(path, 6, seed=0)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(contract.ContractError, match=r"cut\.safetensors is shorter than its header says"):
        contract.LatentsFile(path)
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(contract.ContractError, match=r"junk\.safetensors: not a readable latents file"):
        contract.LatentsFile(tmp_path / "junk.safetensors")

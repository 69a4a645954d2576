"""Stage 1: every kind of bad file is listed with a reason and skipped; every pixel format becomes RGB."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from conftest import part_file, snakemake
from vlcp import contract
from vlcp.images import load_rgb, resize_center_crop, resize_shorter_side, resize_square, to_rgb
from vlcp.index import DatasetError, find_classes, index_class, scan_class
from vlcp.labels import LabelError, imagenet_labels, label_text

EXTENSIONS = [".jpg", ".jpeg", ".png", ".tif", ".tiff"]
MAX_PIXELS = 1_000_000


def save(img, path, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kwargs)


def gradient(mode="RGB", size=(24, 16)):
    array = np.linspace(0, 255, size[0] * size[1] * 3).reshape(size[1], size[0], 3).astype(np.uint8)
    return Image.fromarray(array).convert(mode)


@pytest.fixture
def dataset(tmp_path):
    """An ImageFolder whose class 'mixed' holds one file of each good format and each bad kind."""
    root = tmp_path / "data"
    mixed = root / "train" / "mixed"
    save(gradient(), mixed / "a_rgb.jpg")
    save(gradient("L"), mixed / "b_gray.png")
    save(gradient("RGB").quantize(16), mixed / "c_palette.png")
    save(gradient("RGBA"), mixed / "d_rgba.png")
    save(gradient("CMYK"), mixed / "e_cmyk.jpg")
    sixteen = Image.fromarray((np.arange(16 * 24, dtype=np.uint16).reshape(16, 24) * 150))
    save(sixteen, mixed / "f_16bit.png")
    (mixed / "g_empty.jpg").write_bytes(b"")
    (mixed / "h_text.jpg").write_text("this is not an image\n")
    buffer = io.BytesIO()
    gradient(size=(64, 64)).save(buffer, "JPEG")
    (mixed / "i_truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    save(Image.new("L", (2000, 1000)), mixed / "j_bomb.png")
    os.symlink(mixed / "does-not-exist.png", mixed / "k_dangling.png")
    (mixed / "l_notes.txt").write_text("notes")
    save(gradient(), mixed / "nested" / "m_deeper.tif")
    for split in ("train", "val"):
        save(gradient(), root / split / "plain" / "0.png")
    save(gradient(), root / "val" / "mixed" / "0.png")
    return root


def test_scan_lists_every_bad_kind_with_a_reason(dataset):
    records, rejected = scan_class(dataset, "train", "mixed", EXTENSIONS, MAX_PIXELS)
    assert [r["image"] for r in records] == [
        "train/mixed/a_rgb.jpg",
        "train/mixed/b_gray.png",
        "train/mixed/c_palette.png",
        "train/mixed/d_rgba.png",
        "train/mixed/e_cmyk.jpg",
        "train/mixed/f_16bit.png",
        "train/mixed/nested/m_deeper.tif",
    ]
    reasons = dict(rejected)
    assert list(reasons) == [
        "train/mixed/g_empty.jpg",
        "train/mixed/h_text.jpg",
        "train/mixed/i_truncated.jpg",
        "train/mixed/j_bomb.png",
        "train/mixed/k_dangling.png",
        "train/mixed/l_notes.txt",
    ]
    assert reasons["train/mixed/g_empty.jpg"].startswith("empty file")
    assert reasons["train/mixed/h_text.jpg"].startswith("not an image")
    assert reasons["train/mixed/i_truncated.jpg"].startswith("corrupt or truncated")
    assert reasons["train/mixed/j_bomb.png"].startswith("decompression bomb")
    assert "2000 x 1000 = 2,000,000 pixels, more than dataset.max_image_pixels" in reasons["train/mixed/j_bomb.png"]
    assert reasons["train/mixed/k_dangling.png"].startswith("unreadable")
    assert reasons["train/mixed/l_notes.txt"].startswith("not an image extension")


def test_every_mode_converts_to_rgb_one_way(dataset):
    folder = dataset / "train" / "mixed"
    for name in ("a_rgb.jpg", "b_gray.png", "c_palette.png", "d_rgba.png", "e_cmyk.jpg", "f_16bit.png"):
        img = load_rgb(folder / name)
        assert img.mode == "RGB" and img.size == (24, 16), name
    gray = np.asarray(load_rgb(folder / "b_gray.png"))
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    sixteen = np.asarray(load_rgb(folder / "f_16bit.png"))
    assert sixteen[0, 1, 0] == (150 >> 8) and sixteen[-1, -1, 0] == ((16 * 24 - 1) * 150) >> 8


def png_header(width, height):
    """The first bytes of a PNG of ``width`` x ``height``: enough for Image.open, hardly any pixel data."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def test_a_bomb_beyond_pillows_own_limit_names_the_limit_of_the_config(tmp_path):
    """Pillow refuses a header of more than 2 x MAX_IMAGE_PIXELS (178,956,970) pixels in Image.open, before
    vlcp's check runs; the reason names the config's limit, which that image passes too."""
    from vlcp.images import ImageRejected, open_image

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(20_000, 10_000))
    with pytest.raises(ImageRejected) as info:
        open_image(bomb, 89_478_485)
    assert str(info.value) == "decompression bomb: 200,000,000 pixels, more than dataset.max_image_pixels = 89,478,485"


@pytest.mark.parametrize("size", [(37, 23), (23, 37), (64, 64), (33, 32), (17, 17), (300, 41)])
@pytest.mark.parametrize("resolution", [16, 32])
def test_the_resizes_are_torchvisions_pixel_for_pixel(size, resolution):
    # torchvision/transforms/functional.py: resize (_compute_resized_output_size, `[h, w] == output_size`
    # returns the image) and center_crop (`int(round((h - crop) / 2.0))`), on PIL images via _functional_pil.py
    from torchvision.transforms import functional as TF

    rng = np.random.default_rng(sum(size) + resolution)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    want = TF.center_crop(TF.resize(img, resolution), resolution)
    assert np.array_equal(np.asarray(resize_center_crop(img, resolution)), np.asarray(want))
    assert np.array_equal(np.asarray(resize_shorter_side(img, resolution)), np.asarray(TF.resize(img, resolution)))
    want = TF.resize(img, [resolution, resolution])
    assert np.array_equal(np.asarray(resize_square(img, resolution)), np.asarray(want))


def test_transparent_pixels_become_white():
    img = Image.new("RGBA", (2, 1), (10, 20, 30, 255))
    img.putpixel((1, 0), (0, 0, 0, 0))
    assert np.asarray(to_rgb(img)).tolist() == [[[10, 20, 30], [255, 255, 255]]]


def test_index_class_adds_label_and_fails_on_a_class_with_no_usable_image(dataset, tmp_path):
    records, _ = index_class(dataset, "val", "plain", "plain thing", EXTENSIONS, MAX_PIXELS)
    assert records[0]["label"] == "plain thing" and records[0]["class"] == "plain"
    bad = dataset / "train" / "broken"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"class 'broken' has no usable image .*x.jpg: empty file"):
        index_class(dataset, "train", "broken", "broken", EXTENSIONS, MAX_PIXELS)
    (tmp_path / "data" / "train" / "void").mkdir()
    with pytest.raises(DatasetError, match="the folder is empty"):
        index_class(dataset, "train", "void", "void", EXTENSIONS, MAX_PIXELS)


def test_find_classes_errors(dataset):
    assert find_classes(dataset) == ["mixed", "plain"]
    assert find_classes(dataset, ["plain"]) == ["plain"]
    with pytest.raises(DatasetError, match=r"configured in dataset.classes but missing under .*train: ghost"):
        find_classes(dataset, ["plain", "ghost"])
    (dataset / "train" / "lonely").mkdir()
    with pytest.raises(DatasetError, match=r"missing under .*val: lonely"):
        find_classes(dataset)
    with pytest.raises(DatasetError, match="must hold train/ and val/"):
        find_classes(dataset / "train")


def test_label_texts(tmp_path):
    table = imagenet_labels()
    assert len(table) == 1000
    assert label_text("n02091831", "imagenet") == "Saluki, gazelle hound"
    assert label_text("golden_retriever", "folder") == "golden retriever"
    assert label_text("n02091831", "imagenet", override="a dog") == "a dog"
    tsv = tmp_path / "labels.tsv"
    tsv.write_text("class\tlabel\ncat\ta small cat\n")
    assert label_text("cat", str(tsv)) == "a small cat"
    with pytest.raises(LabelError, match=r"'dog' has no label text in .*labels.tsv; add it under dataset.labels"):
        label_text("dog", str(tsv))
    with pytest.raises(LabelError, match="ImageNet wnid table"):
        label_text("n99999999", "imagenet")


@pytest.mark.workflow
def test_index_rule_on_a_folder_dataset(dataset, tmp_path):
    """The rule writes per split and class files; a class with no usable image stops with its name."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = workdir / "config.yaml"
    config.write_text(
        f"run: t\ndataset:\n  root: {dataset}\n  classes: [mixed, plain]\n  label_table: folder\n"
        "  max_image_pixels: 1000000\n"
    )
    snakemake(workdir, "results/t/index/classes.tsv", "--cores", "1", "--configfile", str(config), offline=False)
    rows = contract.read_index(part_file(workdir / "results/t", "index/train", "mixed.jsonl"))
    assert len(rows) == 7 and rows[0]["label"] == "mixed"
    summary = (workdir / "results/t/index/classes.tsv").read_text().splitlines()
    assert summary[1:] == ["mixed\tmixed\t7\t1\t6", "plain\tplain\t1\t1\t0"]
    assert len(contract.read_rejected(workdir / "results/t/index/rejected.tsv")) == 6

    for child in (dataset / "val" / "plain").iterdir():
        child.unlink()
    (dataset / "val" / "plain" / "bad.png").write_text("oops")
    result = snakemake(
        workdir, "results/t/index/classes.tsv", "--cores", "1", "--configfile", str(config), check=False, offline=False
    )
    assert result.returncode != 0
    log = (workdir / "results/t/logs/index/val/plain.log").read_text()
    assert "class 'plain' has no usable image" in log
    assert not (workdir / "results/t/parts/index/val/plain").exists(), "the failed job's part is removed"


def test_an_image_below_the_smallest_side_is_rejected_with_its_size(tmp_path):
    from PIL import Image

    folder = tmp_path / "train" / "dots"
    folder.mkdir(parents=True)
    Image.new("RGB", (1, 1)).save(folder / "a_dot.png")
    Image.new("RGB", (32, 7)).save(folder / "b_strip.png")
    Image.new("RGB", (8, 8)).save(folder / "c_tile.png")
    records, rejected = scan_class(tmp_path, "train", "dots", EXTENSIONS, MAX_PIXELS, min_side=8)
    assert [r["image"] for r in records] == ["train/dots/c_tile.png"]
    assert dict(rejected) == {
        "train/dots/a_dot.png": "1 x 1 px, smaller than dataset.min_image_side = 8",
        "train/dots/b_strip.png": "32 x 7 px, smaller than dataset.min_image_side = 8",
    }
    # the stage's default is the config's (config/schema.yaml: dataset.min_image_side, 8), not 1
    assert scan_class(tmp_path, "train", "dots", EXTENSIONS, MAX_PIXELS) == (records, rejected)

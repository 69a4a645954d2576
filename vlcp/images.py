"""Opening images safely and converting every pixel format to RGB one way.

Used by every stage that reads real images, so a grayscale, palette, RGBA,
CMYK or 16-bit file gives the same RGB pixels wherever it is read.
"""

import re
import warnings

import numpy as np
from PIL import Image

# Transparent pixels become white, as on a page; a black fill would darken edges.
BACKGROUND = (255, 255, 255)
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class ImageRejected(Exception):
    """An image file that cannot be used; the message is the reason."""


def to_rgb(img):
    """Convert any PIL image to 8-bit RGB: 16-bit scaled to 8, alpha over white, CMYK/palette/gray by PIL."""
    if img.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(img, dtype=np.int64)
        img = Image.fromarray((np.clip(values, 0, 65535) >> 8).astype(np.uint8))
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.asarray(img), 0, 255).astype(np.uint8))
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        img = Image.alpha_composite(canvas, rgba)
    return img.convert("RGB") if img.mode != "RGB" else img


def open_image(path, max_pixels):
    """Open and fully decode ``path``; raise ImageRejected with a reason if it cannot be used.

    The size is checked against ``max_pixels`` (dataset.max_image_pixels) from the header, before any
    pixel is decoded; Pillow's own process-wide limit is left as it is, so threads decoding at once
    cannot see each other's limit.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the check below decides
            with Image.open(path) as img:
                pixels = img.width * img.height
                if pixels > max_pixels:
                    raise ImageRejected(
                        f"decompression bomb: {img.width} x {img.height} = {pixels:,} pixels, more than "
                        f"dataset.max_image_pixels = {max_pixels:,}"
                    )
                img.load()
                return img.copy()
    except Image.DecompressionBombError as err:
        # Pillow refuses, in Image.open, a header of more than twice its MAX_IMAGE_PIXELS, before the check
        # above can run; the schema keeps dataset.max_image_pixels at or under that, so ours was passed too.
        found = re.search(r"\((\d+) pixels\)", str(err))
        pixels = f"{int(found.group(1)):,} pixels" if found else "its size"
        pillow = 2 * Image.MAX_IMAGE_PIXELS
        limit = f"dataset.max_image_pixels = {max_pixels:,}" if max_pixels < pillow else f"Pillow's limit of {pillow:,}"
        raise ImageRejected(f"decompression bomb: {pixels}, more than {limit}") from None
    except Image.UnidentifiedImageError:
        raise ImageRejected("not an image: no image format recognises the file") from None
    except FileNotFoundError:
        raise ImageRejected("unreadable: file not found (a dangling link?)") from None
    except IsADirectoryError:
        raise ImageRejected("unreadable: a folder, not a file") from None
    except PermissionError as err:
        raise ImageRejected(f"unreadable: {err.strerror}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageRejected(f"corrupt or truncated: {err}") from None


def load_rgb(path, max_pixels=Image.MAX_IMAGE_PIXELS):
    """The image at ``path`` as 8-bit RGB (see ``to_rgb``)."""
    return to_rgb(open_image(path, max_pixels))


# torchvision's resizes of a PIL image are Pillow calls (torchvision/transforms/functional.py: resize,
# _compute_resized_output_size, center_crop; _functional_pil.py: resize, crop); they are made here with Pillow
# alone, pixel for pixel the same, so that a stage that only resizes does not import torch.


def resize_shorter_side(img, resolution):
    """torchvision's ``Resize(resolution)`` of a PIL image: the shorter side to ``resolution``, bilinear
    and antialiased, the longer side truncated as torchvision does (diffusers' text-to-image recipe and
    Minimax's transforms use it)."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = resolution, int(resolution * long / short)
    size = (new_short, new_long) if w <= h else (new_long, new_short)
    return img if size == (w, h) else img.resize(size, Image.BILINEAR)


def center_crop(img, resolution):
    """torchvision's ``CenterCrop(resolution)`` of a PIL image at least ``resolution`` on each side."""
    w, h = img.size
    if resolution > w or resolution > h:
        raise ValueError(f"a {w}x{h} image cannot be centre-cropped to {resolution}x{resolution}")
    top, left = int(round((h - resolution) / 2.0)), int(round((w - resolution) / 2.0))
    return img.crop((left, top, left + resolution, top + resolution))


def resize_center_crop(img, resolution):
    """torchvision's ``Resize(resolution)`` then ``CenterCrop(resolution)``."""
    return center_crop(resize_shorter_side(img, resolution), resolution)


def resize_square(img, resolution):
    """torchvision's ``Resize((resolution, resolution))``: the whole image squeezed to a square, bilinear
    (the authors' images for the clustering latents, gen_prototype.py's ``--size``)."""
    return img if img.size == (resolution, resolution) else img.resize((resolution, resolution), Image.BILINEAR)


def to_tensor(images):
    """PIL RGB images -> float tensor (N, 3, H, W) in [-1, 1], the range the VAE was trained on."""
    import torch

    array = np.stack([np.asarray(img, dtype=np.float32) for img in images]) / 127.5 - 1.0
    return torch.from_numpy(array).permute(0, 3, 1, 2)


def random_crop(img, resolution, generator):
    """Resize the shorter side to ``resolution``, then crop a square at a random offset."""
    import torch

    img = resize_shorter_side(img, resolution)
    left = int(torch.randint(0, img.width - resolution + 1, (1,), generator=generator))
    top = int(torch.randint(0, img.height - resolution + 1, (1,), generator=generator))
    return img.crop((left, top, left + resolution, top + resolution))

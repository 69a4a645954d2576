"""The Minimax training augmentation, done on whole batches where the images already are.

A distilled set is tiny (IPC x classes images), so it is decoded once and kept
on the device as uint8; every batch is cropped, flipped, colour-jittered,
lit, normalised and CutMixed there with tensor operations, instead of a PIL
pipeline per image per epoch. The operations are those of MinimaxDiffusion's
``transform_imagenet`` (``data.py``): torchvision's RandomResizedCrop and
RandomHorizontalFlip, Minimax's ColorJitter and PCA lighting (``misc/utils.py``).

Every draw comes from the generators the caller passes: a torch.Generator on the images' device for
the per-image draws, and, for CutMix's box, a numpy Generator as Minimax draws it (``np.random.beta``,
``np.random.randint``); nothing touches the global random state.
"""

import math

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Principal components of ImageNet pixel colours (the ResNet recipes' lighting noise).
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))
GRAY = (0.299, 0.587, 0.114)  # Minimax's Grayscale (misc/utils.py)
BRIGHTNESS, CONTRAST, SATURATION = 0, 1, 2  # colour jitter operations, in the order of their factors


def crop_boxes(b, h, w, scale, ratio, generator, attempts=10):
    """torchvision's ``RandomResizedCrop.get_params`` for ``b`` images at once: up to ten draws of an area
    share in ``scale`` and a log-uniform aspect in ``ratio``, rounded to whole pixels; the first draw
    that fits is kept, and an image with none gets the centre crop of the nearest allowed aspect.
    Returns (top, left, height, width), integer tensors of length ``b`` on ``generator``'s device."""
    device = generator.device
    area = torch.empty(b, attempts, device=device).uniform_(*scale, generator=generator) * (h * w)
    aspect = torch.exp(
        torch.empty(b, attempts, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    )
    cand_w = torch.round(torch.sqrt(area * aspect))
    cand_h = torch.round(torch.sqrt(area / aspect))
    fits = (cand_w > 0) & (cand_w <= w) & (cand_h > 0) & (cand_h <= h)
    first = fits.int().argmax(1, keepdim=True)
    crop_w = cand_w.gather(1, first).squeeze(1)
    crop_h = cand_h.gather(1, first).squeeze(1)
    in_ratio = w / h
    if in_ratio < min(ratio):
        fallback_w, fallback_h = w, round(w / min(ratio))
    elif in_ratio > max(ratio):
        fallback_w, fallback_h = round(h * max(ratio)), h
    else:
        fallback_w, fallback_h = w, h
    found = fits.any(1)
    crop_w = torch.where(found, crop_w, torch.full_like(crop_w, fallback_w))
    crop_h = torch.where(found, crop_h, torch.full_like(crop_h, fallback_h))
    top = torch.rand(b, device=device, generator=generator)
    left = torch.rand(b, device=device, generator=generator)
    top = torch.where(found, torch.floor(top * (h - crop_h + 1)), (h - crop_h).div(2).floor())
    left = torch.where(found, torch.floor(left * (w - crop_w + 1)), (w - crop_w).div(2).floor())
    return top, left, crop_h, crop_w


def bilinear_taps(start, length, size, flipped):
    """``interpolate``'s bilinear taps (half-pixel centres) for ``size`` outputs from each image's ``length``
    pixels from ``start``: the two source indices (B, size), clamped into the box, and the second's weight."""
    j = torch.arange(size, device=start.device, dtype=torch.float32)
    j = torch.where(flipped[:, None], size - 1 - j, j)  # a mirrored output reads its mirror image's source
    src = ((j + 0.5) * (length / size)[:, None] - 0.5).clamp_(min=0)
    first = src.floor()
    second = torch.minimum(first + 1, length[:, None] - 1)
    return (start[:, None] + first).long(), (start[:, None] + second).long(), src - first


def resized_crops(images, top, left, crop_h, crop_w, size, flipped):
    # Whole source rows, then columns, picked by integer taps rather than one grid_sample: grid_sample's
    # float coordinates land a rounding error past a box's last pixel centre and blend in the pixel beyond
    # it. Picking uint8 rows before converting moves a quarter of the bytes (bench/evaluate.py).
    """Each image's box resized to ``size`` x ``size`` as torchvision's bilinear ``resized_crop`` without
    antialiasing (only pixels of the box are read), mirrored left to right where ``flipped``; float32
    (B, C, size, size) on the scale of ``images`` (uint8 or float)."""
    b = images.shape[0]
    y0, y1, wy = bilinear_taps(top, crop_h, size, torch.zeros_like(flipped))
    x0, x1, wx = bilinear_taps(left, crop_w, size, flipped)
    each = torch.arange(b, device=images.device)[:, None]
    rows = images.permute(0, 2, 1, 3)  # (B, H, C, W): a row of every channel per index
    resized = rows[each, y0].float().lerp_(rows[each, y1].float(), wy[:, :, None, None])  # (B, size, C, W)
    columns = resized.permute(0, 3, 1, 2)  # (B, W, size, C)
    out = columns[each, x0].lerp_(columns[each, x1], wx[:, :, None, None])  # (B, size x, size y, C)
    return out.permute(0, 3, 2, 1).contiguous()


def random_resized_crop(images, size, generator, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3), flip=True):
    # All boxes in one pass instead of torchvision.transforms.v2.functional.resized_crop per image (a box
    # of its own each): the batched form is what makes the device loop fast (bench/evaluate.py).
    """torchvision's RandomResizedCrop (bilinear, no antialiasing) and RandomHorizontalFlip on a uint8 or
    float batch (B, C, H, W): each image's box from ``crop_boxes``, resized by ``resized_crops`` into
    float32 on the images' scale."""
    b, _, h, w = images.shape
    top, left, crop_h, crop_w = crop_boxes(b, h, w, scale, ratio, generator)
    if flip:
        flipped = torch.rand(b, device=images.device, generator=generator) < 0.5
    else:
        flipped = torch.zeros(b, dtype=torch.bool, device=images.device)
    return resized_crops(images, top, left, crop_h, crop_w, size, flipped)


def grayscale(images):
    """Luma (B, 1, H, W) of RGB images (B, 3, H, W), with Minimax's weights."""
    return (images[:, 0:1] * GRAY[0]).add_(images[:, 1:2], alpha=GRAY[1]).add_(images[:, 2:3], alpha=GRAY[2])


def color_jitter(images, strength, generator):
    """Minimax's ColorJitter (``misc/utils.py``): brightness, contrast and saturation, each a blend
    x * f + reference * (1 - f) with f uniform in [1 - strength, 1 + strength], in a random order per
    image, without clamping. References: black, the mean luma, the luma of each pixel."""
    if strength == 0:
        return images
    b = images.shape[0]
    factors = torch.empty(3, b, device=images.device).uniform_(1 - strength, 1 + strength, generator=generator)
    order = torch.argsort(torch.rand(b, 3, device=images.device, generator=generator), dim=1)
    out = images.clone()
    for step in range(3):
        op = order[:, step]
        f = factors.gather(0, op.unsqueeze(0)).view(b, 1, 1, 1)
        gray = grayscale(out)
        mean = gray.mean((1, 2, 3), keepdim=True)
        reference = torch.where((op == SATURATION).view(b, 1, 1, 1), gray, mean * (op == CONTRAST).view(b, 1, 1, 1))
        out.mul_(f).add_(reference * (1 - f))
    return out


def lighting(images, strength, generator):
    """Add PCA colour noise: per image, eigvec @ (alpha * eigval) with alpha ~ N(0, strength)."""
    if strength == 0:
        return images
    eigval = torch.tensor(PCA_EIGVAL, device=images.device)
    eigvec = torch.tensor(PCA_EIGVEC, device=images.device)
    alpha = torch.randn(images.shape[0], 3, device=images.device, generator=generator) * strength
    shift = (alpha * eigval) @ eigvec.T
    return images + shift.view(-1, 3, 1, 1)


def normalize(images):
    """ImageNet mean/std normalisation of float images in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean).div_(std)


def train_batch(images_uint8, size, scale_min, jitter, light, generator):
    """The whole training augmentation for a uint8 batch: crop+flip, jitter, lighting, normalise."""
    images = random_resized_crop(images_uint8, size, generator, scale=(scale_min, 1.0)).div_(255)
    return normalize(lighting(color_jitter(images, jitter, generator), light, generator))


def cutmix(images, labels, beta, generator, rng):
    # Not torchvision.transforms.v2.CutMix: it draws from the global random state (no generator), so a
    # run's draws would depend on whatever else drew before it.
    """CutMix (Yun et al.): paste a random box from a shuffled batch; the mixing ratio and the box's
    centre from the numpy Generator ``rng`` (as Minimax's ``np.random``), the shuffle from ``generator``.

    Returns (images, labels_a, labels_b, lam); the loss is lam * CE(labels_a) + (1 - lam) * CE(labels_b).
    """
    if beta <= 0:
        return images, labels, labels, 1.0
    lam = float(rng.beta(beta, beta))
    perm = torch.randperm(images.shape[0], device=images.device, generator=generator)
    h, w = images.shape[2:]
    cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
    x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
    images = images.clone()
    images[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
    lam = 1 - (y2 - y1) * (x2 - x1) / (h * w)
    return images, labels, labels[perm], lam

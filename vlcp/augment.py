"""The Minimax training augmentation, done on whole batches where the images already are.

A distilled set is tiny (IPC x classes images), so it is decoded once and kept
on the device as uint8; every batch is cropped, flipped, colour-jittered,
lit, normalised and CutMixed there with tensor operations, instead of a PIL
pipeline per image per epoch. The operations follow torchvision's
RandomResizedCrop, RandomHorizontalFlip and ColorJitter, and the PCA lighting
noise of the ImageNet ResNet recipes.
"""

import math

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Principal components of ImageNet pixel colours (the ResNet recipes' lighting noise).
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))
GRAY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights


def random_resized_crop(images, size, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3), flip=True):
    """Crop a random box of ``scale`` of the area and ``ratio`` aspect from each image, resize to ``size``
    (bilinear) and mirror half of them; float images (B, 3, H, W) in, (B, 3, size, size) out."""
    b, _, h, w = images.shape
    dev = images.device
    area = torch.empty(b, device=dev).uniform_(*scale) * h * w
    log_ratio = torch.empty(b, device=dev).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    aspect = torch.exp(log_ratio)
    crop_w = torch.sqrt(area * aspect).clamp(max=w)
    crop_h = torch.sqrt(area / aspect).clamp(max=h)
    left = torch.rand(b, device=dev) * (w - crop_w)
    top = torch.rand(b, device=dev) * (h - crop_h)
    sign = torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0) if flip else torch.ones(b, device=dev)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = crop_w / w * sign
    theta[:, 0, 2] = (2 * left + crop_w) / w - 1
    theta[:, 1, 1] = crop_h / h
    theta[:, 1, 2] = (2 * top + crop_h) / h - 1
    grid = F.affine_grid(theta, (b, 3, size, size), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def grayscale(images):
    """Luma (B, 1, H, W) of RGB images (B, 3, H, W), with torchvision's weights."""
    return (images[:, 0:1] * GRAY[0]).add_(images[:, 1:2], alpha=GRAY[1]).add_(images[:, 2:3], alpha=GRAY[2])


def color_jitter(images, strength):
    """Random brightness, contrast and saturation factors in [1 - strength, 1 + strength] per image.

    Blends as torchvision does (x * f + reference * (1 - f), clamped to [0, 1]); written in place
    on one new tensor, as memory traffic is what these steps cost.
    """
    if strength == 0:
        return images
    b = images.shape[0]
    factors = torch.empty(3, b, 1, 1, 1, device=images.device).uniform_(1 - strength, 1 + strength)
    out = images.mul(factors[0]).clamp_(0, 1)
    mean = grayscale(out).mean((1, 2, 3), keepdim=True)
    out.mul_(factors[1]).add_(mean * (1 - factors[1])).clamp_(0, 1)
    gray = grayscale(out).mul_(1 - factors[2])
    return out.mul_(factors[2]).add_(gray).clamp_(0, 1)


def lighting(images, strength):
    """Add PCA colour noise: per image, eigvec @ (alpha * eigval) with alpha ~ N(0, strength)."""
    if strength == 0:
        return images
    eigval = torch.tensor(PCA_EIGVAL, device=images.device)
    eigvec = torch.tensor(PCA_EIGVEC, device=images.device)
    alpha = torch.randn(images.shape[0], 3, device=images.device) * strength
    shift = (alpha * eigval) @ eigvec.T
    return images + shift.view(-1, 3, 1, 1)


def normalize(images):
    """ImageNet mean/std normalisation of float images in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean).div_(std)


def train_batch(images_uint8, size, scale_min, jitter, light):
    """The whole training augmentation for a uint8 batch: crop+flip, jitter, lighting, normalise."""
    images = images_uint8.float().div_(255)
    images = random_resized_crop(images, size, scale=(scale_min, 1.0))
    return normalize(lighting(color_jitter(images, jitter), light))


def cutmix(images, labels, beta):
    """CutMix (Yun et al.): paste a random box from a shuffled batch.

    Returns (images, labels_a, labels_b, lam); the loss is lam * CE(labels_a) + (1 - lam) * CE(labels_b).
    """
    if beta <= 0:
        return images, labels, labels, 1.0
    lam = float(torch.distributions.Beta(beta, beta).sample())
    perm = torch.randperm(images.shape[0], device=images.device)
    h, w = images.shape[2:]
    cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = int(torch.randint(h, (1,))), int(torch.randint(w, (1,)))
    y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
    x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
    images = images.clone()
    images[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
    lam = 1 - (y2 - y1) * (x2 - x1) / (h * w)
    return images, labels, labels[perm], lam

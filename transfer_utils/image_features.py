"""Frozen ImageNet features for small images (pooled CNN vectors), with an on-disk cache.

The image counterpart of :func:`transfer_utils.text.encode_texts`: a pretrained backbone, kept
frozen, turns each image into one vector; a linear model then learns on top (a "linear probe").
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from tqdm.auto import tqdm

from transfer_utils.models import load_image_backbone
from transfer_utils.paths import cache_dir
from transfer_utils.storage import cached_npy


def _cache_key(images: np.ndarray, backbone: str, size: int) -> str:
    """A hash of everything that changes the features: pixels, backbone and input size."""
    digest = hashlib.sha256(f"{backbone}|{size}|{images.shape}|{images.dtype}".encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    return digest.hexdigest()[:24]


def image_features(images: np.ndarray, backbone: str = "efficientnet_lite0", *, size: int = 64,
                   batch_size: int = 128, device: str | torch.device = "cpu", cache: bool = True,
                   progress: bool = True) -> np.ndarray:
    """Pooled features (n, dim) of uint8 images (n, H, W) or (n, H, W, 3), resized to ``size`` pixels."""
    images = np.asarray(images)
    if images.ndim not in (3, 4) or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images (n, H, W) or (n, H, W, 3), got {images.dtype} {images.shape}; "
                         "scale to 0-255 and cast with .astype(np.uint8)")
    if not 32 <= size <= 512:
        raise ValueError(f"size = {size}; use 32 to 512 pixels (the ImageNet models were trained at 224)")
    path = cache_dir() / "image_features" / f"{_cache_key(images, backbone, size)}.npy"
    return cached_npy(path, lambda: _extract(images, backbone, size, batch_size, device, progress), cache)


@torch.no_grad()
def _extract(images: np.ndarray, backbone: str, size: int, batch_size: int, device: str | torch.device,
             progress: bool) -> np.ndarray:
    """The uncached work of :func:`image_features`."""
    model = load_image_backbone(backbone)
    features = model.features.to(device).eval()
    out = np.zeros((len(images), model.num_features), dtype=np.float32)
    for start in tqdm(range(0, len(images), batch_size), desc=f"{backbone} features", disable=not progress,
                      mininterval=1.0):
        batch = model.preprocess(images[start:start + batch_size], size=size).to(device)
        out[start:start + batch_size] = features(batch).cpu().numpy()
    return out

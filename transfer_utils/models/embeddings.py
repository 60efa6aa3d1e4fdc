"""Frozen embeddings: sentence features from a pretrained text encoder and pooled CNN features of small
images from an ImageNet backbone, each cached on disk (lessons 00-03, 08).

Lessons: 00, 01, 03, 06, 07, 09, 10.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from transfer_utils.models.pretrained import (backbone_weights_file, load_image_backbone, load_text_encoder,
                                              resolve_text_model)
from transfer_utils.core.paths import cache_dir
from transfer_utils.core.storage import cached_npy, digest
from transfer_utils.training import precision

CACHE_VERSION = 2  # bump when the feature code changes in a way the key does not capture


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors of each sequence, ignoring padding: (B, L, H), (B, L) → (B, H)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def _cache_key(texts: Sequence[str], model_name: str, max_length: int, normalize: bool, mixed: str = "no") -> str:
    """A digest of everything that changes the features: the model folder's content, texts and settings."""
    folder = resolve_text_model(model_name)
    settings = (max_length, normalize) if mixed == "no" else (max_length, normalize, mixed)  # float32 keys unchanged
    return digest("text_features", CACHE_VERSION, model_files(folder), *settings, list(texts))


MODEL_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")  # weights, config, tokenizer


def model_files(folder: Path) -> list[tuple[str, Path]]:
    """(relative name, path) of the files that decide a model folder's outputs, in a fixed order."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in MODEL_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    return [(p.relative_to(folder).as_posix(), p) for p in files]


def encode_texts(texts: Sequence[str], model_name: str = "minilm", *, batch_size: int = 64,
                 max_length: int = 128, normalize: bool = False, device: str | torch.device = "cpu",
                 cache: bool = True, progress: bool = True, mixed_precision: str = "no") -> np.ndarray:
    """Mean-pooled sentence features (n, hidden) from a frozen encoder; cached under ``data/cache``.

    ``mixed_precision`` "bf16" (or "auto" where the hardware has bf16) runs the encoder under autocast;
    the features come back as float32 either way, and are cached under their own key.
    """
    texts = list(texts)
    mixed = precision.resolve_precision(mixed_precision, device)
    path = cache_dir() / "text_features" / f"{_cache_key(texts, model_name, max_length, normalize, mixed)}.npy"
    return cached_npy(path, lambda: _encode(texts, model_name, batch_size, max_length, normalize, device, progress,
                                            mixed), cache)


@torch.no_grad()
def _encode(texts: list[str], model_name: str, batch_size: int, max_length: int, normalize: bool,
            device: str | torch.device, progress: bool, mixed: str = "no") -> np.ndarray:
    """The uncached work of :func:`encode_texts`."""
    tokenizer, model = load_text_encoder(model_name)
    model.to(device)
    # Batching texts of similar length keeps padding (and wasted compute) small.
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    for start in tqdm(range(0, len(texts), batch_size), desc="encoding", disable=not progress,
                      mininterval=1.0):
        rows = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt").to(device)
        with precision.autocast(mixed, device):
            hidden = model(**batch).last_hidden_state
        pooled = mean_pool(hidden.float(), batch["attention_mask"])
        if normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        out[rows] = pooled.cpu().numpy()
    return out


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
    path = cache_dir() / "image_features" / f"{_image_cache_key(images, backbone, size)}.npy"
    return cached_npy(path, lambda: _extract_images(images, backbone, size, batch_size, device, progress), cache)



def _image_cache_key(images: np.ndarray, backbone: str, size: int) -> str:
    """A digest of everything that changes the features: pixels, the backbone's weight file and input size."""
    return digest("image_features", CACHE_VERSION, backbone, backbone_weights_file(backbone), size, images)


@torch.no_grad()
def _extract_images(images: np.ndarray, backbone: str, size: int, batch_size: int, device: str | torch.device,
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

"""Sentence features from a pretrained text encoder (frozen), with an on-disk cache."""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from transfer_utils.models import load_text_encoder, resolve_text_model
from transfer_utils.paths import cache_dir
from transfer_utils.storage import cached_npy


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors of each sequence, ignoring padding: (B, L, H), (B, L) → (B, H)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def _cache_key(texts: Sequence[str], model_name: str, max_length: int, normalize: bool) -> str:
    """A hash of everything that changes the features: model files, texts and settings."""
    folder = resolve_text_model(model_name)
    weights = sorted(p.name + str(p.stat().st_size) for p in folder.glob("*.safetensors"))
    weights += sorted(p.name + str(p.stat().st_size) for p in folder.glob("*.bin"))
    digest = hashlib.sha256(json.dumps([str(folder.name), weights, max_length, normalize]).encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()[:24]


def encode_texts(texts: Sequence[str], model_name: str = "minilm", *, batch_size: int = 64,
                 max_length: int = 128, normalize: bool = False, device: str | torch.device = "cpu",
                 cache: bool = True, progress: bool = True) -> np.ndarray:
    """Mean-pooled sentence features (n, hidden) from a frozen encoder; cached under ``data/cache``."""
    texts = list(texts)
    path = cache_dir() / "text_features" / f"{_cache_key(texts, model_name, max_length, normalize)}.npy"
    return cached_npy(path, lambda: _encode(texts, model_name, batch_size, max_length, normalize, device, progress),
                      cache)


@torch.no_grad()
def _encode(texts: list[str], model_name: str, batch_size: int, max_length: int, normalize: bool,
            device: str | torch.device, progress: bool) -> np.ndarray:
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
        pooled = mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])
        if normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        out[rows] = pooled.cpu().numpy()
    return out

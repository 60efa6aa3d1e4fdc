"""Batches: a seeded DataLoader for arrays or datasets, and two loaders walked side by side.

Used by lessons 04, 05 and 08 (through ``image_tensors``) and by ``fine_tuning``.

Lessons: 04, 05.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset


def _as_tensor(array: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A tensor from an array; float64 becomes float32, the dtype models use."""
    tensor = torch.as_tensor(np.asarray(array)) if not isinstance(array, torch.Tensor) else array
    return tensor.float() if tensor.dtype == torch.float64 else tensor


def make_loader(data: Dataset | tuple[np.ndarray | torch.Tensor, ...], batch_size: int = 64, *,
                shuffle: bool = False, seed: int = 0, collate_fn: Callable | None = None,
                drop_last: bool = False) -> DataLoader:
    """A DataLoader whose shuffling order depends only on ``seed`` (its own generator)."""
    if isinstance(data, tuple):
        data = TensorDataset(*(_as_tensor(a) for a in data))
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      collate_fn=collate_fn, drop_last=drop_last)


class PairedLoader:
    """Batches of two loaders side by side; the second restarts whenever it runs out."""

    def __init__(self, first: DataLoader, second: DataLoader):
        self.first, self.second = first, second

    def __len__(self) -> int:
        return len(self.first)

    def __iter__(self):
        other = iter(self.second)
        for batch in self.first:
            try:
                paired = next(other)
            except StopIteration:
                other = iter(self.second)
                paired = next(other)
            yield batch, paired


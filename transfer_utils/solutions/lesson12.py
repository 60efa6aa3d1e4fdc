"""Reference answers to lesson 12's exercises (batch shares, averaged losses, accumulation, bf16 rounding).

Try the exercises before reading on: the notebook's checks tell you when your answer is right.

Lessons: 12.
"""

from __future__ import annotations

import numpy as np
import torch


def share(batch: list[int], rank: int, processes: int) -> list[int]:
    """The examples of ``batch`` that process ``rank`` gets, read from accelerate's own batch sharding."""
    from accelerate.data_loader import BatchSamplerShard
    from torch.utils.data import BatchSampler

    sampler = BatchSamplerShard(BatchSampler(batch, len(batch), False), processes, rank, split_batches=True)
    return next(iter(sampler))


def whole_batch_mean(share_means: list[float], share_sizes: list[int]) -> float:
    """The mean over all examples, from each share's mean and size (a weighted average)."""
    return float(np.average(share_means, weights=share_sizes))


def full_batch_gradient(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """Every parameter's gradient of the whole batch's mean cross-entropy, flattened into one vector (k unused)."""
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def bf16_round(values: torch.Tensor) -> torch.Tensor:
    """float32 values rounded to bf16 by torch's own conversion, returned as float32."""
    return values.float().to(torch.bfloat16).float()

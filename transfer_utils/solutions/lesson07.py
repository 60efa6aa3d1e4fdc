"""Reference answers to the exercises of lesson 07 (fine-tuning BERT), for its instant checks.

Lessons: 07.
"""

from __future__ import annotations

import numpy as np
import torch

from transfer_utils import fine_tuning


def f1_from_confusion(matrix: np.ndarray) -> float:
    """F1 of class 1 from a 2×2 confusion matrix (rows true, columns predicted); 0 without a true positive."""
    tp, fp, fn = float(matrix[1, 1]), float(matrix[0, 1]), float(matrix[1, 0])
    return 2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0


def ce_grad(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Gradient of the mean cross-entropy with respect to the logits, computed by autograd."""
    z = logits.detach().clone().requires_grad_(True)
    return torch.autograd.grad(torch.nn.functional.cross_entropy(z, labels), z)[0]


def pad_batch(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id lists padded with ``pad_id`` to the longest, and the attention mask (int64 both)."""
    longest = max(len(s) for s in sequences)
    ids = torch.tensor([list(s) + [pad_id] * (longest - len(s)) for s in sequences], dtype=torch.long)
    mask = torch.tensor([[1] * len(s) + [0] * (longest - len(s)) for s in sequences], dtype=torch.long)
    return ids, mask


def schedule_facts(n_train: int, config: fine_tuning.FineTuneConfig) -> tuple[int, float]:
    """(optimizer steps on ``n_train`` examples, learning rate after the first step ÷ the peak ``lr``)."""
    total = config.total_steps(n_train)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
    schedule = fine_tuning.warmup_linear_schedule(optimizer, config.warmup_steps(n_train), total)
    optimizer.step()
    schedule.step()
    return total, float(optimizer.param_groups[0]["lr"] / config.lr)

"""Reference answers to lesson 09's exercises (distillation, binary cross-entropy, relational distances).

Try the exercises before reading on: the notebook's checks tell you when your answer is right.

Lessons: 09.
"""

from __future__ import annotations

import torch

from transfer_utils.models.parts import count_parameters
from transfer_utils.models.small_text import TextCNN


def text_cnn_parameters(vocab: int, dim: int, width: int, kernel: int, classes: int) -> int:
    """Parameters of a real ``TextCNN`` with this table, filters and classes, counted by ``count_parameters``."""
    return count_parameters(TextCNN(torch.zeros(vocab, dim), classes, width=width, kernel_size=kernel))


def normalized_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances (B, B) divided by their mean over distinct pairs (zeros if all coincide)."""
    distances = torch.cdist(embeddings, embeddings)
    off_diagonal = ~torch.eye(len(embeddings), dtype=torch.bool)
    mean = distances[off_diagonal].mean()
    return distances / mean if mean > 0 else torch.zeros_like(distances)

"""Reference answers to the exercises of lesson 06 (attention math), for its instant checks.

Lessons: 06.
"""

from __future__ import annotations

import torch

from transfer_utils import attention as attention_tools


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q·kᵀ/√d_k)·v without a mask: the output of scaled dot-product attention."""
    return attention_tools.scaled_dot_product_attention(q, k, v)[0]


def attention_bytes(n: int, n_layers: int, n_heads: int) -> int:
    """Bytes of float32 attention probabilities, every layer and head, for one sequence of ``n`` tokens."""
    return n_layers * n_heads * n * n * 4

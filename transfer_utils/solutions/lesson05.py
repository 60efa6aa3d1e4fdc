"""Reference answers to lesson 05's exercises (domain adaptation): block counts and the reversed gradient.

The checks in the notebook compare a learner's function with these; try the exercise before reading them.
(The λ schedule and the Deep CORAL loss are checked against the library's ``methods.deep`` functions.)

Lessons: 05.
"""

from __future__ import annotations

import numpy as np
import torch

from transfer_utils.methods.deep import grad_reverse


def block_counts(bitmap: np.ndarray) -> np.ndarray:
    """On-pixels of a 32×32 bitmap counted in each non-overlapping 4×4 block (an 8×8 array), block by block."""
    return np.array([[int(bitmap[4 * i:4 * i + 4, 4 * j:4 * j + 4].sum()) for j in range(8)] for i in range(8)])


def reversed_gradient(x: torch.Tensor, w: torch.Tensor, lam: float) -> torch.Tensor:
    """∂y/∂x for y = Σ wᵢ·zᵢ² with z = grad_reverse(x, lam), computed by autograd."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((w * grad_reverse(x, lam) ** 2).sum(), x)
    return grad

"""Reference answers to lesson 04's exercises (model-based transfer): an SGD step and the distance per stage.

The checks in the notebook compare a learner's function with these; try the exercise before reading them.
(The unfreezing-plan exercise is checked against the library's own ``methods.parameter.unfreezing_plan``.)

Lessons: 04.
"""

from __future__ import annotations

import torch
from torch import nn

from transfer_utils.methods import parameter


def sgd_step(theta: torch.Tensor, grad: torch.Tensor, lr: float, weight_decay: float) -> torch.Tensor:
    """``theta`` after one step of ``torch.optim.SGD(lr, weight_decay)`` (no momentum), run by PyTorch itself."""
    w = theta.clone().requires_grad_(True)
    w.grad = grad.clone()
    torch.optim.SGD([w], lr=lr, weight_decay=weight_decay).step()
    return w.detach()


def stage_distance(model: nn.Module, start: dict[str, torch.Tensor], prefix: str) -> float:
    """‖θ − θ⁰‖ over the parameters named in ``start`` whose names begin with ``prefix`` (0 when none do)."""
    return parameter.distance_from(model, start, [name for name in start if name.startswith(prefix)])

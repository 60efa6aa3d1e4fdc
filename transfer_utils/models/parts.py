"""How a network is divided and how big it is: its stages from input to output, its parameter count.

Used by lessons 00, 04, 07 and 08, and by ``methods.parameter`` (freezing works stage by stage).

Lessons: 04, 07, 08, 09.
"""

from __future__ import annotations

from torch import nn

Stages = list[tuple[str, nn.Module]]  # (name, module) from input to output


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


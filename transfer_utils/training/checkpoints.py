"""Checkpoints: model, optimizer and scheduler states written atomically and read back safely.

Lessons: 04, 08 (through ``transfer_utils.training``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from transfer_utils.core.storage import atomic_torch_save, safe_torch_load
from transfer_utils.training.modes import model_device


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, **extra: Any) -> Path:
    """Atomically save model (and optimizer / scheduler) state dicts plus plain extra values."""
    state: dict[str, Any] = {"model": model.state_dict(), "extra": extra}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    return atomic_torch_save(path, state)


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None) -> dict[str, Any]:
    """Restore what ``save_checkpoint`` wrote (``weights_only=True``); returns the extra values."""
    state = safe_torch_load(path, map_location=model_device(model))
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    return state["extra"]


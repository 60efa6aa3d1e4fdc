"""Where a model is and what mode it is in: its device, train / eval mode, and batch norm under freezing.

Lessons: 04, 08 (through ``transfer_utils.training``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def keep_frozen_batchnorm_in_eval(model: nn.Module) -> None:
    """Put batch-norm layers whose parameters are all frozen in eval mode.

    In train mode, batch norm keeps updating its running mean and variance from the batches it
    sees, even when no gradient reaches it: a "frozen" block would still drift towards the new task.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()


def batchnorm_in_eval(model: nn.Module) -> None:
    """Put every batch-norm layer in eval mode: normalise with the stored (pretrained) statistics."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, loader: Any) -> None:
    """Re-estimate every batch-norm layer's running mean and variance on the images of ``loader``.

    The statistics become plain averages over all batches (``momentum=None``); nothing else changes.
    """
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in layers]
    was_training = model.training
    model.eval()  # dropout and friends off; only batch norm runs in train mode below
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    device = next(model.parameters()).device
    for batch in loader:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        model(x.to(device))
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    model.train(was_training)


def move_to(batch: Any, device: torch.device) -> Any:
    """Move every tensor of a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (cpu for a model without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


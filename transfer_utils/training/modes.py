"""Where a model is and what mode it is in: its device, train / eval mode, and batch norm under freezing.

One mechanism keeps frozen batch norm frozen: ``train_mode(model)`` is ``model.train()`` followed by
putting back in eval mode every batch-norm layer whose parameters are all frozen, or that
``freeze_batchnorm_stats`` marked. ``fit`` (and anything else that switches a model to training) calls
it, so no model needs its own ``train()`` override. ``eval_mode(model)`` is a context manager that
switches to eval mode and puts every module's previous mode back afterwards, even after an error.

Lessons: 04, 05, 08, 09, 12 (through ``transfer_utils.training``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

_FROZEN_STATS = "_frozen_batchnorm_stats"  # attribute set on a batch-norm layer by freeze_batchnorm_stats


def _batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every batch-norm layer of ``model`` (1-D, 2-D and 3-D)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def freeze_batchnorm_stats(module: nn.Module, frozen: bool = True) -> nn.Module:
    """Mark every batch-norm layer of ``module`` to keep its stored statistics, also while training.

    With a few small batches from a new domain, batch statistics are noisy and the running averages
    would drift away from what the pretrained weights expect. ``train_mode`` honours the mark.
    """
    for m in _batchnorm_layers(module):
        setattr(m, _FROZEN_STATS, frozen)
        if frozen:
            m.eval()
    return module


def keep_frozen_batchnorm_in_eval(model: nn.Module) -> None:
    """Put in eval mode the batch-norm layers whose parameters are all frozen, or that are marked frozen.

    In train mode, batch norm keeps updating its running mean and variance from the batches it
    sees, even when no gradient reaches it: a "frozen" block would still drift towards the new task.
    """
    for m in _batchnorm_layers(model):
        params = list(m.parameters(recurse=False))
        if getattr(m, _FROZEN_STATS, False) or (params and not any(p.requires_grad for p in params)):
            m.eval()


def train_mode(model: nn.Module) -> nn.Module:
    """``model.train()``, then frozen batch norm (see ``keep_frozen_batchnorm_in_eval``) back in eval mode."""
    model.train()
    keep_frozen_batchnorm_in_eval(model)
    return model


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``with eval_mode(model):`` runs in eval mode, then restores every module's own previous mode."""
    before = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in before:
            m.training = training


def batchnorm_in_eval(model: nn.Module) -> None:
    """Put every batch-norm layer in eval mode: normalise with the stored (pretrained) statistics."""
    for m in _batchnorm_layers(model):
        m.eval()


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, loader: Any) -> None:
    """Re-estimate every batch-norm layer's running mean and variance on the images of ``loader``.

    The statistics become plain averages over all batches (``momentum=None``); nothing else changes.
    """
    layers = _batchnorm_layers(model)
    momenta = [m.momentum for m in layers]
    with eval_mode(model):  # dropout and friends off; only batch norm runs in train mode below
        for m in layers:
            m.reset_running_stats()
            m.momentum = None
            m.train()
        device = model_device(model)
        for batch in loader:
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            model(x.to(device))
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum


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

"""Model-based transfer: which pretrained weights may change, how fast, and how far.

A network is seen as a list of *stages* from input to output, e.g. ``stem, layer1, ..., layer4, head``.
Freezing the first stages, unfreezing them one by one (gradual unfreezing), giving each stage its own
learning rate (discriminative rates) and pulling weights back to their pretrained values (L2-SP) are
all small functions of that list.

Lessons: 04, 08, 09.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from transfer_utils.models.parts import Stages
from transfer_utils.models.small_resnet import SmallResNet
from transfer_utils.training import Step, StepOutput, supervised_step


def set_trainable(module: nn.Module, trainable: bool) -> nn.Module:
    """Switch gradients on or off for every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(trainable)
    return module


def freeze_stages(stages: Stages, n_frozen: int) -> list[str]:
    """Freeze the first ``n_frozen`` stages, make the rest trainable; return the frozen stage names."""
    if not 0 <= n_frozen <= len(stages):
        raise ValueError(f"n_frozen={n_frozen} must be between 0 and the number of stages ({len(stages)})")
    for i, (_, module) in enumerate(stages):
        set_trainable(module, i >= n_frozen)
    return [name for name, _ in stages[:n_frozen]]


def unfreezing_plan(n_stages: int, total_steps: int, last_frozen: int = 0) -> list[tuple[int, int]]:
    """Gradual unfreezing (ULMFiT): ``(n_frozen, steps)`` phases, head only first, one stage more each phase.

    Phase ``i`` trains the top ``i + 1`` stages; the last phase leaves ``last_frozen`` stages frozen.
    Steps are split as evenly as possible, earlier phases getting the remainder.
    """
    frozen = list(range(n_stages - 1, last_frozen - 1, -1))
    if not frozen or total_steps < len(frozen):
        raise ValueError(f"need 0 <= last_frozen < n_stages and at least one step per phase "
                         f"(n_stages={n_stages}, last_frozen={last_frozen}, total_steps={total_steps})")
    base, extra = divmod(total_steps, len(frozen))
    return [(n, base + (i < extra)) for i, n in enumerate(frozen)]


def layerwise_param_groups(stages: Stages, base_lr: float, decay: float,
                           **group_options: Any) -> list[dict[str, Any]]:
    """Optimizer parameter groups with discriminative learning rates.

    The last stage (the head) gets ``base_lr``, the stage below ``base_lr * decay``, the one below
    that ``base_lr * decay**2``, and so on: general early features change slowly, task-specific
    late ones fast (Howard & Ruder, 2018). Every parameter appears in exactly one group.
    """
    if not 0 < decay <= 1:
        raise ValueError(f"decay={decay} must be in (0, 1]: lower stages learn more slowly, not faster")
    groups, seen = [], set()
    for depth, (name, module) in enumerate(reversed(stages)):
        params = [p for p in module.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        if params:
            groups.append({"params": params, "lr": base_lr * decay ** depth, "name": name, **group_options})
    return groups


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter, by name: the starting point L2-SP pulls towards."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def l2_sp_penalty(model: nn.Module, start: dict[str, torch.Tensor], alpha: float,
                  beta: float = 0.0) -> torch.Tensor:
    """L2-SP (Li et al., 2018): α/2·‖w − w⁰‖² over the pretrained weights + β/2·‖w‖² over the new ones.

    Parameters named in ``start`` are pretrained and pulled back towards their starting values; the
    others (a new head) get ordinary weight decay towards zero.
    """
    pretrained = torch.zeros((), device=next(model.parameters()).device)
    new = torch.zeros_like(pretrained)
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name in start:
            if start[name].shape != p.shape:
                raise ValueError(f"start point for {name!r} has shape {tuple(start[name].shape)}, "
                                 f"the model has {tuple(p.shape)}: take the snapshot after replacing the head")
            pretrained = pretrained + (p - start[name]).pow(2).sum()
        else:
            new = new + p.pow(2).sum()
    return 0.5 * alpha * pretrained + 0.5 * beta * new


def l2_sp_step(start: dict[str, torch.Tensor], alpha: float, beta: float = 0.0,
               step: Step = supervised_step) -> Step:
    """A ``training.fit`` step: the task loss plus the L2-SP penalty (logged as ``l2_sp``)."""

    def l2_sp(model: nn.Module, batch: Any) -> StepOutput:
        out = step(model, batch)
        if not model.training:  # evaluation reports the task loss alone
            return out
        penalty = l2_sp_penalty(model, start, alpha, beta)
        return StepOutput(out.loss + penalty, out.logits, out.targets, {**out.logs, "l2_sp": penalty.item()})

    return l2_sp


def distance_from(model: nn.Module, start: dict[str, torch.Tensor], names: Sequence[str] | None = None) -> float:
    """Euclidean distance ‖w − w⁰‖ over the parameters in ``start`` (or only ``names``)."""
    params = dict(model.named_parameters())
    keys = names if names is not None else [k for k in start if k in params]
    total = sum(float((params[k].detach() - start[k]).pow(2).sum()) for k in keys)
    return math.sqrt(total)


class SharedEncoder(nn.Module):
    """One encoder, one head per task (hard parameter sharing): ``forward(x, task)``."""

    def __init__(self, encoder: SmallResNet, heads: dict[str, nn.Module]):
        super().__init__()
        self.encoder, self.heads = encoder, nn.ModuleDict(heads)

    def forward(self, x: torch.Tensor, task: str) -> torch.Tensor:
        return self.heads[task](self.encoder.features(x))

    def for_task(self, task: str) -> nn.Module:
        """A view of the network that answers one task (for ``training.evaluate``)."""
        return _TaskView(self, task)


class _TaskView(nn.Module):
    """``SharedEncoder`` restricted to one task."""

    def __init__(self, shared: SharedEncoder, task: str):
        super().__init__()
        self.shared, self.task = shared, task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(x, self.task)


def joint_step(model: SharedEncoder, batch: tuple) -> StepOutput:
    """A ``training.fit`` step for two tasks at once: ``((x_a, y_a), (x_b, y_b))``, loss = sum of both.

    Both batches go through the encoder together, so batch norm sees (and remembers) the mixture of
    the two tasks' images that it will later be evaluated on. The logits and targets reported (for
    training accuracy) are those of the second task.
    """
    (xa, ya), (xb, yb) = batch
    task_a, task_b = list(model.heads)
    features = model.encoder.features(torch.cat([xa, xb]))
    loss_a = nn.functional.cross_entropy(model.heads[task_a](features[:len(xa)]), ya)
    logits_b = model.heads[task_b](features[len(xa):])
    loss_b = nn.functional.cross_entropy(logits_b, yb)
    return StepOutput(loss_a + loss_b, logits_b, yb, {f"{task_a}_loss": loss_a.item(), f"{task_b}_loss": loss_b.item()})


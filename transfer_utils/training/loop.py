"""A small, explicit training loop for any ``torch.nn.Module``: fit, evaluate, predict, checkpoints.

Batches may be tuples ``(x, y)`` / ``(x, y, sample_weight)`` or dicts in the Hugging Face style
(``{"input_ids": ..., "attention_mask": ..., "labels": ...}``). A custom ``step`` function (for
example a domain-adversarial one) can replace the supervised step without changing the loop.
The loop touches no global state: seeds and data order belong to the caller (see ``make_loader``).

Lessons: 04, 08 (through ``transfer_utils.training``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from transfer_utils.training.checkpoints import save_checkpoint
from transfer_utils.training.modes import model_device, move_to


@dataclass
class StepOutput:
    """What one step returns: the loss to minimise, and optionally logits, targets and extra logs."""

    loss: torch.Tensor
    logits: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    logs: dict[str, float] = field(default_factory=dict)


Step = Callable[[nn.Module, Any], StepOutput]


def logits_of(output: Any) -> torch.Tensor:
    """Logits from a plain tensor or a Hugging Face ``ModelOutput`` (``.logits``)."""
    return output.logits if hasattr(output, "logits") else output


def supervised_step(model: nn.Module, batch: Any) -> StepOutput:
    """Cross-entropy on one batch, with optional per-example weights."""
    if isinstance(batch, dict):
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "weights")}
        targets, weights = batch["labels"], batch.get("weights")
        logits = logits_of(model(**inputs))
    else:
        x, targets, *rest = batch
        weights = rest[0] if rest else None
        logits = logits_of(model(x))
    losses = nn.functional.cross_entropy(logits, targets, reduction="none")
    loss = losses.mean() if weights is None else (losses * weights).sum() / weights.sum()
    return StepOutput(loss, logits, targets)


@dataclass
class History:
    """Per-epoch records of a ``fit`` call and where early stopping landed."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_score: float | None = None
    stopped_early: bool = False
    steps: int = 0

    def column(self, name: str) -> list[float]:
        """One metric across epochs, e.g. ``history.column("val_accuracy")``."""
        return [row[name] for row in self.epochs if name in row]


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, *, step: Step = supervised_step,
             device: torch.device | None = None) -> dict[str, float]:
    """Mean loss and accuracy over a loader, in eval mode (the model's mode is restored after)."""
    device = device or model_device(model)
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for batch in loader:
        out = step(model, move_to(batch, device))
        n = len(out.targets) if out.targets is not None else 1
        total_loss += out.loss.item() * n
        count += n
        if out.logits is not None and out.targets is not None:
            correct += (out.logits.argmax(dim=-1) == out.targets).sum().item()
    model.train(was_training)
    return {"loss": total_loss / max(count, 1), "accuracy": correct / max(count, 1), "n": count}


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, device: torch.device | None = None) -> torch.Tensor:
    """Concatenated logits for every batch (inputs only, or batches with labels that are ignored)."""
    device = device or model_device(model)
    was_training = model.training
    model.eval()
    chunks = []
    for batch in loader:
        batch = move_to(batch, device)
        if isinstance(batch, dict):
            output = model(**{k: v for k, v in batch.items() if k not in ("labels", "weights")})
        else:
            output = model(batch[0] if isinstance(batch, (list, tuple)) else batch)
        chunks.append(logits_of(output).float().cpu())
    model.train(was_training)
    return torch.cat(chunks)


def _improved(score: float, best: float | None, mode: str, min_delta: float) -> bool:
    """True when ``score`` beats ``best`` by more than ``min_delta`` in direction ``mode``."""
    if best is None:
        return True
    return score > best + min_delta if mode == "max" else score < best - min_delta


def _track_best(history: History, row: dict[str, float], monitor: str, mode: str, min_delta: float,
                needed: bool) -> bool:
    """Record ``row`` as the best epoch if its ``monitor`` value improved; say whether it did."""
    if monitor not in row:
        if needed:
            raise KeyError(f"monitor={monitor!r} is not a history column; have: {sorted(row)}")
        return False  # nothing to monitor: training simply keeps the last weights
    if not _improved(row[monitor], history.best_score, mode, min_delta):
        return False
    history.best_epoch, history.best_score = int(row["epoch"]), row[monitor]
    return True


def fit(model: nn.Module, train_loader: Iterable, optimizer: torch.optim.Optimizer, *,
        epochs: int = 1, max_steps: int | None = None, val_loader: Iterable | None = None,
        scheduler: Any = None, step: Step = supervised_step, eval_step: Step = supervised_step,
        monitor: str = "val_accuracy",
        mode: str = "max", patience: int | None = None, min_delta: float = 0.0,
        clip_grad_norm: float | None = None, checkpoint_path: str | Path | None = None,
        restore_best: bool = True, device: torch.device | None = None,
        progress: bool = True) -> History:
    """Train ``model``; evaluate on ``val_loader`` after each epoch; stop early; keep the best weights.

    ``scheduler.step()`` is called after every optimizer step (per-step schedules such as linear
    warm-up). ``step`` computes the training loss of a batch; ``eval_step`` scores the validation
    batches (plain cross-entropy unless told otherwise, so a step with extra training-only terms or
    inputs, such as DANN's, needs no evaluation branch). ``monitor`` names a history column (``val_accuracy``, ``val_loss``, ``train_loss``...).
    With ``checkpoint_path``, the best model and optimizer states are written atomically there.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    if monitor.startswith("val_") and val_loader is None and (patience is not None or checkpoint_path):
        raise ValueError(f"monitor={monitor!r} needs a val_loader (or monitor='train_loss')")
    device = device or model_device(model)
    history = History()
    best_state: dict[str, torch.Tensor] | None = None
    stale = 0
    steps_per_epoch = len(train_loader) if hasattr(train_loader, "__len__") else None
    total = max_steps or (epochs * steps_per_epoch if steps_per_epoch else None)
    bar = tqdm(total=total, desc="training", disable=not progress, mininterval=1.0)
    for epoch in range(1, epochs + 1):
        model.train()
        started = time.perf_counter()
        sums: dict[str, float] = {}
        seen = correct = scored = 0
        for batch in train_loader:
            out = step(model, move_to(batch, device))
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            history.steps += 1
            n = len(out.targets) if out.targets is not None else 1
            seen += n
            for key, value in {"loss": out.loss.item(), **out.logs}.items():
                sums[key] = sums.get(key, 0.0) + value * n
            if out.logits is not None and out.targets is not None:
                correct += (out.logits.argmax(dim=-1) == out.targets).sum().item()
                scored += len(out.targets)
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{out.loss.item():.3f}", refresh=False)
            if max_steps is not None and history.steps >= max_steps:
                break
        row: dict[str, float] = {"epoch": epoch, "steps": history.steps,
                                 "lr": optimizer.param_groups[0]["lr"]}
        row.update({f"train_{k}": v / max(seen, 1) for k, v in sums.items()})
        if scored:
            row["train_accuracy"] = correct / scored
        if val_loader is not None:
            row.update({f"val_{k}": v for k, v in evaluate(model, val_loader, step=eval_step, device=device).items()
                        if k != "n"})
        row["seconds"] = time.perf_counter() - started
        history.epochs.append(row)
        if _track_best(history, row, monitor, mode, min_delta, needed=patience is not None or bool(checkpoint_path)):
            stale = 0
            if restore_best:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if checkpoint_path:
                save_checkpoint(checkpoint_path, model, optimizer, scheduler, epoch=epoch, history=history.epochs)
        else:
            stale += 1
        if patience is not None and stale >= patience:
            history.stopped_early = True
            break
        if max_steps is not None and history.steps >= max_steps:
            break
    bar.close()
    if restore_best and best_state is not None:
        model.load_state_dict(best_state)
    return history


def steps_for(epochs: int, n_examples: int, batch_size: int, drop_last: bool = False) -> int:
    """How many optimizer steps ``epochs`` passes over ``n_examples`` take."""
    per_epoch = n_examples // batch_size if drop_last else math.ceil(n_examples / batch_size)
    return epochs * per_epoch


def train_steps(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer, steps: int, *,
                step: Step = supervised_step, scheduler: object = None) -> History:
    """Train for exactly ``steps`` optimizer steps (as many passes over ``loader`` as that takes)."""
    epochs = -(-steps // len(loader))  # ceiling division
    return fit(model, loader, optimizer, epochs=epochs, max_steps=steps, step=step, scheduler=scheduler,
               progress=False)


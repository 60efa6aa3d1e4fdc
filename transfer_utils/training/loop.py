"""A small, explicit training loop for any ``torch.nn.Module``: fit, evaluate, predict, checkpoints.

Batches may be tuples ``(x, y)`` / ``(x, y, sample_weight)`` or dicts in the Hugging Face style
(``{"input_ids": ..., "attention_mask": ..., "labels": ...}``). A custom ``step`` function (for
example a domain-adversarial one) can replace the supervised step without changing the loop.
The loop touches no global state: seeds and data order belong to the caller (see ``make_loader``).
The same loop runs on several processes or devices when given a Hugging Face ``accelerate.Accelerator``
(``training.distributed.accelerated_fit`` prepares the objects and passes it on).

Lessons: 04, 05, 08, 09, 12 (through ``transfer_utils.training``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn
from tqdm.auto import tqdm

from transfer_utils.training.checkpoints import (load_checkpoint, loader_state, read_checked, rng_state,
                                                 save_checkpoint, set_loader_state, set_rng_state)
from transfer_utils.training.modes import eval_mode, model_device, move_to, train_mode


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

    @property
    def final(self) -> dict[str, float]:
        """The last epoch's row."""
        return self.epochs[-1]


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, *, step: Step = supervised_step,
             device: torch.device | None = None) -> dict[str, float]:
    """Mean loss and accuracy over a loader, in eval mode (the model's mode is restored after)."""
    device = device or model_device(model)
    total_loss, correct, count = 0.0, 0, 0
    with eval_mode(model):
        for batch in loader:
            out = step(model, move_to(batch, device))
            n = len(out.targets) if out.targets is not None else 1
            total_loss += out.loss.item() * n
            count += n
            if out.logits is not None and out.targets is not None:
                correct += (out.logits.argmax(dim=-1) == out.targets).sum().item()
    return {"loss": total_loss / max(count, 1), "accuracy": correct / max(count, 1), "n": count}


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, device: torch.device | None = None) -> torch.Tensor:
    """Concatenated logits for every batch (inputs only, or batches with labels that are ignored)."""
    device = device or model_device(model)
    chunks = []
    with eval_mode(model):
        for batch in loader:
            batch = move_to(batch, device)
            if isinstance(batch, dict):
                output = model(**{k: v for k, v in batch.items() if k not in ("labels", "weights")})
            else:
                output = model(batch[0] if isinstance(batch, (list, tuple)) else batch)
            chunks.append(logits_of(output).float().cpu())
    return torch.cat(chunks)


# --- the pieces of fit ---------------------------------------------------------------------------

@dataclass
class _EpochMeans:
    """Running example-weighted sums of one epoch's step outputs, read out as ``train_*`` columns."""

    sums: dict[str, float] = field(default_factory=dict)
    seen: int = 0
    correct: int = 0
    scored: int = 0

    def add(self, out: StepOutput) -> None:
        """Count one step's loss, logs and correct predictions."""
        n = len(out.targets) if out.targets is not None else 1
        self.seen += n
        for key, value in {"loss": out.loss.item(), **out.logs}.items():
            self.sums[key] = self.sums.get(key, 0.0) + value * n
        if out.logits is not None and out.targets is not None:
            self.correct += (out.logits.argmax(dim=-1) == out.targets).sum().item()
            self.scored += len(out.targets)

    def columns(self) -> dict[str, float]:
        """``train_loss``, ``train_<log>`` means and ``train_accuracy`` (when steps report logits)."""
        row = {f"train_{k}": v / max(self.seen, 1) for k, v in self.sums.items()}
        if self.scored:
            row["train_accuracy"] = self.correct / self.scored
        return row


def _optimizer_step(model: nn.Module, loss: torch.Tensor, optimizer: torch.optim.Optimizer, scheduler: Any,
                    clip_grad_norm: float | None, accelerator: Any = None) -> bool:
    """Backward pass, optional gradient clipping, one optimizer step, then one scheduler step.

    Returns whether the weights moved: with an accelerator that accumulates gradients, only every
    k-th micro-batch steps (its prepared optimizer and scheduler skip the others).
    """
    if accelerator is not None:
        return _accelerated_step(model, loss, optimizer, scheduler, clip_grad_norm, accelerator)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_grad_norm is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return True


def _accelerated_step(model: nn.Module, loss: torch.Tensor, optimizer: torch.optim.Optimizer, scheduler: Any,
                      clip_grad_norm: float | None, accelerator: Any) -> bool:
    """The same step through ``accelerator``: backward (loss scaling, accumulation), clip, step, then zero.

    Gradients are zeroed *after* the step here: zeroing before the backward pass would wipe the
    micro-batches accumulated so far (the prepared optimizer skips ``zero_grad`` between them).
    """
    accelerator.backward(loss)  # divides by the accumulation steps; scales an fp16 loss
    if clip_grad_norm is not None and accelerator.sync_gradients:
        accelerator.clip_grad_norm_(model.parameters(), clip_grad_norm)  # unscales fp16 gradients first
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return bool(accelerator.sync_gradients)


def _train_epoch(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer, scheduler: Any,
                 step: Step, history: History, *, device: torch.device, clip_grad_norm: float | None,
                 max_steps: int | None, bar: tqdm, epoch: int, accelerator: Any = None) -> dict[str, float]:
    """One pass over ``loader`` in train mode (fewer steps if ``max_steps`` is reached); the ``train_*`` columns."""
    train_mode(model)
    means = _EpochMeans()
    for batch in loader:
        # accumulate: no gradient sync between processes until the micro-batch that steps
        with accelerator.accumulate(model) if accelerator is not None else contextlib.nullcontext():
            out = step(model, move_to(batch, device))
            stepped = _optimizer_step(model, out.loss, optimizer, scheduler, clip_grad_norm, accelerator)
        means.add(out)
        if not stepped:
            continue
        history.steps += 1
        bar.update(1)
        bar.set_postfix(epoch=epoch, loss=f"{out.loss.item():.3f}", refresh=False)
        if max_steps is not None and history.steps >= max_steps:
            break
    return means.columns()


def _evaluation_columns(model: nn.Module, loaders: Mapping[str, Iterable], step: Step,
                        device: torch.device) -> dict[str, float]:
    """``<name>_loss`` and ``<name>_accuracy`` for every named evaluation loader."""
    row = {}
    for name, loader in loaders.items():
        scores = evaluate(model, loader, step=step, device=device)
        row.update({f"{name}_loss": scores["loss"], f"{name}_accuracy": scores["accuracy"]})
    return row


def _monitor_mode(monitor: str, mode: str | None) -> str:
    """``mode`` as given, or "min" for a monitor that ends in ``loss`` and "max" otherwise."""
    if mode is None:
        return "min" if monitor.endswith("loss") else "max"
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max', 'min' or None (follow the monitor), got {mode!r}")
    return mode


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


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the model's state dict (the best weights so far)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _save_checkpoints(folder: Path, improved: bool, model: nn.Module, optimizer: torch.optim.Optimizer,
                      scheduler: Any, step: Step, loader: Iterable, history: History, stale: int,
                      accelerator: Any = None) -> None:
    """Write ``latest.pt`` (and ``best.pt`` when the epoch improved): everything a resumed run needs.

    With several processes, the main one writes (every process holds the same weights) and the file
    keeps every process's random state, in process order, so each resumes with its own.
    """
    rng: Any = rng_state()
    if accelerator is not None:
        from accelerate.utils import gather_object

        rng = gather_object([rng])
    extra = {"history": dataclasses.asdict(history), "stale": stale,
             "step": step.state_dict() if hasattr(step, "state_dict") else None,
             "loader": loader_state(loader), "rng": rng}
    if accelerator is None or accelerator.is_main_process:
        for name in ("latest.pt", "best.pt") if improved else ("latest.pt",):
            save_checkpoint(folder / name, model, optimizer, scheduler, **extra)
    if accelerator is not None:
        accelerator.wait_for_everyone()  # nobody reads or moves on before the files are complete


def _resume(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, step: Step,
            loader: Iterable, process_index: int = 0) -> tuple[History, int, dict[str, torch.Tensor] | None]:
    """Load a checkpoint written by ``fit``; return its history, stale count and the best weights so far."""
    path = path / "latest.pt" if path.is_dir() else path
    extra = load_checkpoint(path, model, optimizer, scheduler)
    if extra["step"] is not None:
        step.load_state_dict(extra["step"])  # type: ignore[attr-defined]
    history = History(**extra["history"])
    best_path = path.with_name("best.pt")
    best = read_checked(best_path)["model"] if history.best_epoch is not None and best_path.exists() else None
    set_loader_state(loader, extra["loader"])  # may replay batches, so the random states come last
    rng = extra["rng"]  # one state, or one per process (written by a run with an accelerator)
    set_rng_state(rng[min(process_index, len(rng) - 1)] if isinstance(rng, list) else rng)
    return history, extra["stale"], best


def fit(model: nn.Module, train_loader: Iterable, optimizer: torch.optim.Optimizer, *,
        epochs: int = 1, max_steps: int | None = None, val_loader: Iterable | None = None,
        val_loaders: Mapping[str, Iterable] | None = None,
        scheduler: Any = None, step: Step = supervised_step, eval_step: Step = supervised_step,
        monitor: str = "val_accuracy", mode: str | None = None, patience: int | None = None,
        min_delta: float = 0.0, clip_grad_norm: float | None = None,
        checkpoint_dir: str | Path | None = None, resume_from: str | Path | None = None,
        restore_best: bool = True, device: torch.device | None = None, progress: bool = True,
        accelerator: Any = None) -> History:
    """Train ``model``; evaluate on ``val_loader`` after each epoch; stop early; keep the best weights.

    ``scheduler.step()`` is called after every optimizer step (per-step schedules such as linear
    warm-up). ``step`` computes the training loss of a batch; ``eval_step`` scores the validation
    batches (plain cross-entropy unless told otherwise, so a step with extra training-only terms or
    inputs, such as DANN's, needs no evaluation branch). ``val_loaders`` (name → loader) adds the
    columns ``<name>_loss`` / ``<name>_accuracy`` after each epoch, e.g. for curves.
    ``monitor`` names a history column (``val_accuracy``, ``val_loss``, ``train_loss``...); ``mode``
    defaults to "min" for a column ending in ``loss``, "max" otherwise.
    With ``checkpoint_dir``, ``latest.pt`` is written after every epoch and ``best.pt`` after every
    improvement; ``resume_from`` (one of those files, or the folder for ``latest.pt``) continues that
    run with the same weights, optimizer, schedule, step state, data order and random states.
    ``accelerator``: an ``accelerate.Accelerator`` that already prepared ``model``, ``optimizer``,
    ``train_loader`` and ``scheduler`` (``training.distributed.accelerated_fit`` does both). Backward
    passes, clipping and gradient accumulation then go through it, ``steps`` and ``max_steps`` count
    optimizer steps, and only the main process writes checkpoints.
    """
    mode = _monitor_mode(monitor, mode)
    eval_sets = {**({"val": val_loader} if val_loader is not None else {}), **(val_loaders or {})}
    if monitor.startswith("val_") and "val" not in eval_sets and (patience is not None or checkpoint_dir):
        raise ValueError(f"monitor={monitor!r} needs a val_loader (or monitor='train_loss')")
    device = device or model_device(model)
    core = model if accelerator is None else accelerator.unwrap_model(model)  # what weights are saved from
    history, stale, best_state = History(), 0, None
    if resume_from is not None:
        history, stale, best_state = _resume(Path(resume_from), core, optimizer, scheduler, step, train_loader,
                                             0 if accelerator is None else accelerator.process_index)
    steps_per_epoch = len(train_loader) if hasattr(train_loader, "__len__") else None
    if steps_per_epoch and accelerator is not None:
        steps_per_epoch = math.ceil(steps_per_epoch / accelerator.gradient_accumulation_steps)
    total = max_steps or (epochs * steps_per_epoch if steps_per_epoch else None)
    bar = tqdm(total=total, initial=history.steps, desc="training", disable=not progress, mininterval=1.0)
    for epoch in range(len(history.epochs) + 1, epochs + 1):
        if history.stopped_early or (max_steps is not None and history.steps >= max_steps):
            break
        started = time.perf_counter()
        train_columns = _train_epoch(model, train_loader, optimizer, scheduler, step, history, device=device,
                                     clip_grad_norm=clip_grad_norm, max_steps=max_steps, bar=bar, epoch=epoch,
                                     accelerator=accelerator)
        row = {"epoch": epoch, "steps": history.steps, "lr": optimizer.param_groups[0]["lr"], **train_columns,
               **_evaluation_columns(model, eval_sets, eval_step, device), "seconds": time.perf_counter() - started}
        history.epochs.append(row)
        improved = _track_best(history, row, monitor, mode, min_delta,
                               needed=patience is not None or checkpoint_dir is not None)
        stale = 0 if improved else stale + 1
        if improved and restore_best:
            best_state = _weights(core)
        history.stopped_early = patience is not None and stale >= patience
        if checkpoint_dir is not None:
            _save_checkpoints(Path(checkpoint_dir), improved, core, optimizer, scheduler, step, train_loader,
                              history, stale, accelerator)
    bar.close()
    if restore_best and best_state is not None:
        core.load_state_dict(best_state)
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

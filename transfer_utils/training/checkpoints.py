"""Checkpoints: model, optimizer and scheduler states written atomically, checked and read back safely.

Every checkpoint file ``x.pt`` gets a ``x.pt.sha256`` beside it; loading refuses a file whose bytes
no longer match (a flipped bit, a half-copied file) with an error that names it. Files are read with
``torch.load(weights_only=True)``: tensors, numbers, strings, lists and dicts only, never code.
For resuming a run, ``rng_state`` / ``set_rng_state`` and ``loader_state`` / ``set_loader_state``
capture what decides the rest of the run besides the weights: random number generators and data order.

Lessons: 04, 05, 08, 09, 12 (through ``transfer_utils.training``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from transfer_utils.data.loaders import order_generators
from transfer_utils.core.storage import atomic_torch_save, atomic_write_text, safe_torch_load, sha256_file
from transfer_utils.training.modes import model_device


class CorruptCheckpointError(ValueError):
    """A checkpoint whose bytes do not match the SHA-256 written beside it (or that has none)."""


def _digest_path(path: Path) -> Path:
    """Where the SHA-256 of checkpoint ``path`` is kept: ``path`` + ``.sha256``."""
    return path.with_name(path.name + ".sha256")


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, **extra: Any) -> Path:
    """Atomically save model (and optimizer / scheduler) state dicts plus plain extra values, and their SHA-256."""
    state: dict[str, Any] = {"model": model.state_dict(), "extra": extra}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    return write_checked(path, state)


def write_checked(path: str | Path, state: dict[str, Any]) -> Path:
    """``atomic_torch_save`` of ``state``, then its SHA-256 (atomically too) in ``path.sha256``."""
    path = atomic_torch_save(path, state)
    atomic_write_text(_digest_path(path), sha256_file(path) + "\n")
    return path


def read_checked(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The state in checkpoint ``path`` after checking its SHA-256 (``weights_only=True``)."""
    path = Path(path)
    digest = _digest_path(path)
    if not digest.exists():
        raise CorruptCheckpointError(f"checkpoint {path} has no {digest.name} beside it: cannot check it")
    expected = digest.read_text(encoding="utf-8").strip()
    if sha256_file(path) != expected:
        raise CorruptCheckpointError(f"checkpoint {path} is corrupted: its SHA-256 does not match {digest.name}")
    return safe_torch_load(path, map_location=map_location)


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None) -> dict[str, Any]:
    """Restore what ``save_checkpoint`` (or ``fit``) wrote, after checking it; returns the extra values."""
    state = read_checked(path, map_location=model_device(model))
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    return state["extra"]


# --- what else decides the rest of a run -----------------------------------------------------------

def rng_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), numpy and python random states, as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
            "python": [version, list(internal), gauss_next]}


def set_rng_state(state: dict[str, Any]) -> None:
    """Put back the random states that ``rng_state`` captured."""
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _generators(loader: Iterable) -> list[torch.Generator]:
    """``order_generators``, plus the generator that a loader prepared by ``accelerate`` shares between processes."""
    found = order_generators(loader)
    shared = getattr(loader, "synchronized_generator", None)  # accelerate's DataLoaderShard
    if isinstance(shared, torch.Generator) and all(g is not shared for g in found):
        found.append(shared)
    return found


def _has_own_state(loader: Iterable) -> bool:
    """True for loaders with a working ``state_dict`` (not accelerate's wrapper around a plain DataLoader)."""
    return hasattr(loader, "state_dict") and not hasattr(loader, "base_dataloader")


def loader_state(loader: Iterable) -> dict[str, Any]:
    """What the next pass over ``loader`` depends on: its ``state_dict()``, or its generators' states.

    Taken between epochs, when a DataLoader's previous pass is complete, so the generator states
    alone decide the next shuffle.
    """
    if _has_own_state(loader):
        return {"loader": loader.state_dict()}
    return {"generators": [g.get_state() for g in _generators(loader)]}


def set_loader_state(loader: Iterable, state: dict[str, Any]) -> None:
    """Put back what ``loader_state`` captured."""
    if "loader" in state:
        loader.load_state_dict(state["loader"])  # type: ignore[attr-defined]
        return
    generators = _generators(loader)
    if len(generators) != len(state["generators"]):
        raise ValueError(f"the loader has {len(generators)} generators, the checkpoint {len(state['generators'])}")
    for generator, saved in zip(generators, state["generators"]):
        generator.set_state(saved)

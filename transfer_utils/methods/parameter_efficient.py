"""Parameter-efficient fine-tuning: a LoRA layer by hand, and small helpers around the ``peft`` library.

    LoRALinear              y = W x + b + (B A x)·α/r with W frozen and only A, B trained (Hu et al., 2021)
    lora_classifier         a text classifier with peft LoRA on the named linear layers (its head trained too)
    ia3_classifier          the same with peft (IA)³: learned scaling vectors on keys, values, feed-forward
    train_head_only         freeze everything but the classification head
    trainable_share         trainable and total parameter counts, and their ratio
    save_pretrained_atomic  ``save_pretrained`` into a folder, atomically; returns the size of each file
    PeakMemory              how far the process's resident memory (RSS, sampled) rose above its start

Lessons: 11.
"""

from __future__ import annotations

import copy
import ctypes
import gc
import math
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from transfer_utils.methods.parameter import set_trainable
from transfer_utils.models.parts import count_parameters


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update: ``base(x) + dropout(x) Aᵀ Bᵀ · alpha / r``."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if r < 1:
            raise ValueError(f"rank r={r} must be at least 1")
        self.base = set_trainable(base, False)
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))  # down: d_in → r
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))  # up: r → d_out, zero so training starts at W
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's (and peft's) initialisation
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """The update the adapter adds to W: ``B A · alpha / r`` (shape of W, rank at most r)."""
        return self.lora_B @ self.lora_A * self.scaling

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with weight ``W + B A · alpha / r``: the same function, no extra matmuls."""
        layer = copy.deepcopy(self.base)
        with torch.no_grad():
            layer.weight += self.delta_weight()
        return layer

    @classmethod
    def from_peft(cls, layer: nn.Module, adapter: str = "default") -> "LoRALinear":
        """A copy of a peft ``lora.Linear`` (same W, b, A, B, α, r, dropout rate) in this class."""
        base = copy.deepcopy(layer.get_base_layer())
        dropout = layer.lora_dropout[adapter]
        hand = cls(base, layer.r[adapter], layer.lora_alpha[adapter], getattr(dropout, "p", 0.0))
        if not math.isclose(layer.scaling[adapter], hand.scaling):
            raise ValueError(f"peft scales by {layer.scaling[adapter]}, not alpha / r (rsLoRA?): not this layer")
        with torch.no_grad():
            hand.lora_A.copy_(layer.lora_A[adapter].weight)
            hand.lora_B.copy_(layer.lora_B[adapter].weight)
        return hand


def lora_classifier(model: nn.Module, r: int = 8, alpha: float = 16, dropout: float = 0.1,
                    target_modules: Sequence[str] = ("query", "value")) -> nn.Module:
    """peft LoRA on the ``target_modules`` linear layers; the new classification head stays fully trainable."""
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=list(target_modules))
    return get_peft_model(model, config)  # SEQ_CLS: peft also trains (and saves) the head, `classifier`


def ia3_classifier(model: nn.Module) -> nn.Module:
    """peft (IA)³ with its defaults for the model type (BERT: keys, values, feed-forward outputs), head trained."""
    from peft import IA3Config, TaskType, get_peft_model

    return get_peft_model(model, IA3Config(task_type=TaskType.SEQ_CLS))


def train_head_only(model: nn.Module, head: str = "classifier") -> nn.Module:
    """Freeze every parameter except those of the submodule named ``head``."""
    set_trainable(model, False)
    set_trainable(model.get_submodule(head), True)
    return model


def trainable_share(model: nn.Module) -> tuple[int, int, float]:
    """(trainable parameters, all parameters, trainable / all), counted as peft counts them."""
    trainable, total = count_parameters(model, trainable_only=True), count_parameters(model)
    return trainable, total, trainable / total


def save_pretrained_atomic(model: Any, folder: str | os.PathLike) -> dict[str, int]:
    """``model.save_pretrained`` into a temporary sibling folder, then renamed to ``folder``; {file: bytes}."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.{os.getpid()}.", suffix=".tmp", dir=folder.parent))
    try:
        model.save_pretrained(temp)
        if folder.exists():  # move the old folder aside first: a reader sees the old or the new one, whole
            old = temp.with_name(temp.name + ".old")
            folder.rename(old)
            temp.rename(folder)
            shutil.rmtree(old)
        else:
            temp.rename(folder)
    finally:
        if temp.exists():
            shutil.rmtree(temp)
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}


def _release_free_memory() -> None:
    """Collect garbage and ask glibc to hand freed pages back, so RSS starts from what is really in use."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows): RSS may then include freed memory
        pass


class PeakMemory:
    """``with PeakMemory() as m: ...`` then ``m.peak_bytes``: the highest RSS seen, minus RSS at the start.

    RSS is sampled every ``interval`` seconds by a thread (psutil); ``tracemalloc`` would miss tensors,
    which PyTorch allocates outside Python's allocator.
    """

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.start_bytes = self.peak_rss = self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        import psutil

        process = psutil.Process()
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        import psutil

        _release_free_memory()
        self.start_bytes = self.peak_rss = psutil.Process().memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_bytes = self.peak_rss - self.start_bytes

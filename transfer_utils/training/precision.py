"""Mixed precision: the forward pass in bfloat16 where the hardware makes that faster, weights kept in float32.

``torch.autocast`` runs matrix products in bfloat16 and keeps sums that need precision (softmax,
layer norm, the loss) in float32; the weights, their gradients and AdamW's state stay float32. bf16 keeps
float32's exponent range, so no loss scaling is needed (fp16 needs it). It pays off only where the
processor has bf16 instructions: NVIDIA GPUs from Ampere on, and x86 CPUs that report ``avx512_bf16`` or
``amx_bf16``; elsewhere a CPU emulates it and gets slower. ``"auto"`` therefore picks bf16 only there.

    cpu_bf16_flags        the bf16 instructions this CPU reports (Linux)
    resolve_precision     "auto" / "no" / "bf16" → "no" or "bf16" for a device
    autocast              the context a forward pass runs in
    autocast_step         a training / evaluation step whose forward pass runs under ``autocast``

Lessons: 01, 07, 09, 11, 12.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transfer_utils.training.loop import Step, StepOutput, supervised_step

PRECISIONS = ("auto", "no", "bf16")
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_bf16_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> list[str]:
    """The bf16 instruction sets this CPU reports; empty where there are none or no /proc/cpuinfo."""
    path = Path(cpuinfo)
    return sorted(set(path.read_text().split()) & BF16_CPU_FLAGS) if path.exists() else []


def resolve_precision(choice: str, device: torch.device | str) -> str:
    """``"no"`` or ``"bf16"``: ``"auto"`` means bf16 where it is fast (bf16 GPUs, CPUs with bf16 instructions)."""
    if choice not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {PRECISIONS}, got {choice!r}")
    if choice != "auto":
        return choice
    kind = torch.device(device).type
    if kind == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return "bf16" if kind == "cpu" and cpu_bf16_flags() else "no"  # mps: float32, its bf16 support varies


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bfloat16 when ``precision`` is "bf16", else a context that does nothing."""
    if precision == "no":
        return contextlib.nullcontext()
    if precision != "bf16":
        raise ValueError(f"precision must be 'no' or 'bf16' (resolve 'auto' first), got {precision!r}")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def autocast_step(precision: str, device: torch.device | str, step: Step = supervised_step) -> Step:
    """``step`` with its forward pass (and loss) under ``autocast``; the backward pass follows its dtypes."""
    if precision == "no":
        return step

    def mixed(model: nn.Module, batch: Any) -> StepOutput:
        with autocast(precision, device):
            out = step(model, batch)
        # logits back in float32, so accuracy and argmax see no rounding of ties in bf16
        out.logits = None if out.logits is None else out.logits.float()
        return out

    return mixed

"""Reference answers to lesson 11's exercises (LoRA's size, forward pass, merging, and adapter storage).

Try the exercises before reading on: the notebook's checks tell you when your answer is right.

Lessons: 11.
"""

from __future__ import annotations

import os
import struct
import tempfile

import torch

from transfer_utils.methods import parameter_efficient as pe


def lora_parameter_count(d_in: int, d_out: int, r: int) -> int:
    """Trainable parameters of a real ``LoRALinear`` of rank r around a ``d_in → d_out`` linear layer."""
    layer = pe.LoRALinear(torch.nn.Linear(d_in, d_out), r, 1.0)
    return sum(p.numel() for p in layer.parameters() if p.requires_grad)


class _OneLinear(torch.nn.Module):
    """A model with a single linear layer named ``query``, for peft to wrap."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.query = torch.nn.Linear(d_in, d_out)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.query(inputs)


def lora_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                 alpha: float) -> torch.Tensor:
    """The output of peft's own LoRA layer holding these W, b, A, B and alpha (no dropout)."""
    from peft import LoraConfig, get_peft_model

    wrapped = get_peft_model(_OneLinear(weight.shape[1], weight.shape[0]),
                             LoraConfig(r=A.shape[0], lora_alpha=alpha, target_modules=["query"]))
    layer = wrapped.base_model.model.query
    with torch.no_grad():
        layer.get_base_layer().weight.copy_(weight)
        layer.get_base_layer().bias.copy_(bias)
        layer.lora_A["default"].weight.copy_(A)
        layer.lora_B["default"].weight.copy_(B)
        return layer(x)


def merge(weight: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float) -> torch.Tensor:
    """The weight of ``LoRALinear.merged()``: one plain layer computing what W plus the adapter computes."""
    layer = pe.LoRALinear(torch.nn.Linear(weight.shape[1], weight.shape[0]), A.shape[0], alpha)
    with torch.no_grad():
        layer.base.weight.copy_(weight)
        layer.lora_A.copy_(A)
        layer.lora_B.copy_(B)
    return layer.merged().weight.detach()


def stored_bytes(n_numbers: int, dtype: str) -> int:
    """Bytes that ``n_numbers`` numbers of ``dtype`` take in a real safetensors file, its header left out."""
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "numbers.safetensors")
        save_file({"numbers": torch.zeros(n_numbers, dtype=getattr(torch, dtype))}, path)
        with open(path, "rb") as handle:
            header = struct.unpack("<Q", handle.read(8))[0]  # the file starts with its header's length
        return os.path.getsize(path) - 8 - header

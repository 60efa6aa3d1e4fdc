"""Attention written out by hand: softmax(Q·Kᵀ/√d_k)·V, padding masks, multi-head attention, a check
against a real pretrained BERT layer, and tools to measure what attention costs.

Shapes follow PyTorch: ``q`` is ``(..., L_q, d_k)``, ``k`` is ``(..., L_k, d_k)``, ``v`` is
``(..., L_k, d_v)``; the leading ``...`` is usually ``(batch, heads)``. Masks follow
``torch.nn.functional.scaled_dot_product_attention``: a *boolean* mask is True where a query may look
at a key, a *float* mask is added to the scores (0 to keep, a very negative number to block).

Lessons: 06.
"""

from __future__ import annotations

import math
import statistics
import time
import weakref
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

# --- the formula ----------------------------------------------------------------------------------


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Fail early, naming the mismatch, instead of deep inside a matrix product."""
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"q, k, v need at least 2 dimensions (..., length, dim); got {q.ndim}, {k.ndim}, {v.ndim}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same last dimension d_k; got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same length (one value per key); got {k.shape[-2]} and {v.shape[-2]}")


def apply_mask(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Scores with blocked positions pushed to the lowest float (boolean mask) or the mask added (float mask)."""
    if mask.dtype == torch.bool:
        # The lowest finite float, not -inf: a row with every key blocked then gets uniform weights
        # instead of NaN (what Hugging Face's BERT does too); partly blocked rows are identical either way.
        return scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    if mask.is_floating_point():
        return scores + mask
    raise TypeError(f"mask must be bool (True = may attend) or float (added to the scores); got {mask.dtype}")


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None,
                                 scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q·kᵀ·scale + mask)·v with scale = 1/√d_k by default; returns (output, attention probabilities)."""
    _check_qkv(q, k, v)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., L_q, L_k): how well each query matches each key
    if mask is not None:
        scores = apply_mask(scores, mask)
    probs = scores.softmax(dim=-1)  # each row is a probability distribution over the keys
    return probs @ v, probs  # each output row is a weighted average of the value rows


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """A tokenizer's ``attention_mask`` (batch, length; 1 = token, 0 = padding) → boolean (batch, 1, 1, length)."""
    if attention_mask.ndim != 2:
        raise ValueError(f"attention_mask must be (batch, length) as a tokenizer returns it; got shape "
                         f"{tuple(attention_mask.shape)}")
    # (batch, 1, 1, L_k) broadcasts over heads and query positions: every query ignores the padded keys.
    return attention_mask.bool()[:, None, None, :]


def softmax_entropy(probs: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Entropy (in nats) of each probability distribution along ``dim``; 0·log 0 counts as 0."""
    return -(probs * probs.clamp_min(1e-30).log()).sum(dim=dim)


# --- several heads ---------------------------------------------------------------------------------


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(batch, length, n_heads·d) → (batch, n_heads, length, d): each head gets its own slice of features."""
    batch, length, width = x.shape
    if width % n_heads:
        raise ValueError(f"the feature size {width} is not divisible by n_heads={n_heads}")
    return x.view(batch, length, n_heads, width // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(batch, n_heads, length, d) → (batch, length, n_heads·d): the heads' outputs side by side again."""
    batch, n_heads, length, d = x.shape
    return x.transpose(1, 2).reshape(batch, length, n_heads * d)


def multi_head_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, n_heads: int,
                         mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Split already-projected q, k, v into heads, attend in each head, merge: returns (output, probs per head)."""
    out, probs = scaled_dot_product_attention(split_heads(query, n_heads), split_heads(key, n_heads),
                                              split_heads(value, n_heads), mask)
    return merge_heads(out), probs


class MultiHeadAttention(nn.Module):
    """Multi-head attention with its own query / key / value / output projections (as in a Transformer)."""

    def __init__(self, dim: int, n_heads: int, bias: bool = True):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"dim={dim} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.query, self.key, self.value = (nn.Linear(dim, dim, bias=bias) for _ in range(3))
        self.out = nn.Linear(dim, dim, bias=bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Queries from ``x``, keys and values from ``context`` (default ``x``: self-attention)."""
        context = x if context is None else context
        merged, probs = multi_head_attention(self.query(x), self.key(context), self.value(context),
                                             self.n_heads, mask)
        return self.out(merged), probs


# --- a real BERT layer -------------------------------------------------------------------------------


def bert_self_attention_module(model: nn.Module, layer: int) -> nn.Module:
    """The ``BertSelfAttention`` block (with .query, .key, .value) of encoder layer ``layer``."""
    encoder = getattr(model, "encoder", None) or getattr(getattr(model, "bert", None), "encoder", None)
    if encoder is None or not hasattr(encoder, "layer"):
        raise TypeError(f"{type(model).__name__} is not a BERT-style model with model.encoder.layer[i]; "
                        f"use a BERT-family encoder such as model_name='minilm' or 'bert-base-uncased'")
    if not 0 <= layer < len(encoder.layer):
        raise ValueError(f"layer={layer} is out of range; this model has layers 0 to {len(encoder.layer) - 1}")
    block = encoder.layer[layer].attention.self
    if not all(hasattr(block, name) for name in ("query", "key", "value")):
        raise TypeError(f"layer {layer}'s attention has no query/key/value projections; a BERT layout is needed")
    return block


@torch.no_grad()
def bert_attention(model: nn.Module, layer: int, hidden_states: torch.Tensor,
                   attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Recompute one BERT layer's self-attention from its own weights and the hidden states entering it.

    ``hidden_states`` is ``outputs.hidden_states[layer]`` of a forward pass with
    ``output_hidden_states=True`` (index 0 is the embeddings, which enter layer 0). Returns the
    per-head context vectors merged back to ``(batch, length, hidden)`` and the probabilities
    ``(batch, heads, length, length)``: the same tensors the model computes before its output projection.
    """
    block = bert_self_attention_module(model, layer)
    n_heads = model.config.num_attention_heads
    q, k, v = block.query(hidden_states), block.key(hidden_states), block.value(hidden_states)
    return multi_head_attention(q, k, v, n_heads, padding_mask(attention_mask))


@torch.no_grad()
def compare_with_bert(model: nn.Module, batch: dict[str, torch.Tensor]) -> list[dict[str, float]]:
    """Per layer: the largest |difference| between our recomputed attention probabilities and the model's own."""
    if getattr(model.config, "_attn_implementation", "eager") != "eager":
        raise ValueError("this model does not return attention probabilities; load it with "
                         "attn_implementation='eager', e.g. load_text_encoder('minilm', attn_implementation='eager')")
    outputs = model(**batch, output_attentions=True, output_hidden_states=True)
    rows = []
    for layer, theirs in enumerate(outputs.attentions):
        _, ours = bert_attention(model, layer, outputs.hidden_states[layer], batch["attention_mask"])
        diff = (ours - theirs).abs()  # every head, every query row (padded ones included)
        rows.append({"layer": layer, "max_abs_diff": float(diff.max()),
                     "worst_head": int(diff.amax(dim=(0, 2, 3)).argmax())})
    return rows


# --- cost ------------------------------------------------------------------------------------------


class TensorMemoryMeter(TorchDispatchMode):
    """Peak bytes of the tensors a block of code allocates (any device), tracked op by op.

    Every tensor an operation returns is counted once per storage while some Python object still
    refers to it; views and tensors that existed before the block are not counted. Use as
    ``with torch.no_grad(), TensorMemoryMeter() as meter: ...`` and read ``meter.peak_bytes``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.current_bytes = 0
        self.peak_bytes = 0
        self._sizes: dict[int, int] = {}  # storage address → bytes, for storages born inside the block
        self._holders: dict[int, int] = {}  # storage address → live tensors pointing at it

    def _release(self, address: int) -> None:
        """One tensor on this storage died; free the storage when it was the last one."""
        self._holders[address] -= 1
        if self._holders[address] == 0:
            self.current_bytes -= self._sizes.pop(address)
            del self._holders[address]

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        existing = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for tensor in tree_leaves(out):
            if not isinstance(tensor, torch.Tensor):
                continue
            address = tensor.untyped_storage().data_ptr()
            if address not in self._sizes:
                if address in existing:
                    continue  # a view of an input that was not allocated here: no new memory
                self._sizes[address] = tensor.untyped_storage().nbytes()
                self._holders[address] = 0
                self.current_bytes += self._sizes[address]
                self.peak_bytes = max(self.peak_bytes, self.current_bytes)
            self._holders[address] += 1
            weakref.finalize(tensor, self._release, address)
        return out


def _seconds(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds one call of ``fn()`` takes: CPU time of this process on a CPU, wall time on a GPU."""
    fn()  # an untimed call first: the memory the previous (often much larger) case freed is reused warm
    if device.type == "cpu" and time.get_clock_info("process_time").resolution < 1e-4:
        # CPU time counts only the time our process computed, not the time other programs on a busy
        # machine took from it (with one torch thread it equals the compute time of the call).
        # (Where that clock is coarse, e.g. 16 ms on Windows, wall time below is the better choice.)
        start = time.process_time()
        fn()
        return time.process_time() - start
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()  # GPU work is asynchronous: wait for it before reading the clock
    elif device.type == "mps":
        torch.mps.synchronize()
    return time.perf_counter() - start


@torch.no_grad()
def attention_costs(lengths: list[int], *, dim: int = 384, n_heads: int = 12, rounds: int = 5,
                    device: str | torch.device = "cpu", seed: int = 0, progress: bool = True) -> list[dict[str, float]]:
    """Time and memory of one self-attention layer for each sequence length (random inputs, batch 1).

    ``attention_s`` is the median time (CPU time on a CPU) of the part that compares every token with
    every other one (scores, softmax, weighted sum: O(n²·dim)); ``projections_s`` that of the four
    linear maps (O(n·dim²)). Each round times every length once, so a machine that gets busier or quieter during
    the run slows all lengths alike instead of bending the curve. ``peak_mib`` is the peak memory the
    attention part allocates; ``score_matrix_mib`` the size of one (heads, n, n) float32 tensor.
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    layer = MultiHeadAttention(dim, n_heads).to(device)
    cases = {}
    for n in lengths:
        x = torch.randn(1, n, dim, generator=generator).to(device)
        cases[n] = (x, *(split_heads(t, n_heads) for t in (layer.query(x), layer.key(x), layer.value(x))))
    times: dict[int, dict[str, list[float]]] = {n: {"attention_s": [], "projections_s": []} for n in lengths}
    for round_ in tqdm(range(rounds + 1), desc="timing rounds", disable=not progress):
        for n, (x, q, k, v) in cases.items():
            attention_s = _seconds(lambda: scaled_dot_product_attention(q, k, v), device)
            projections_s = _seconds(lambda: layer.out(layer.query(x) + layer.key(x) + layer.value(x)), device)
            if round_ > 0:  # round 0 only warms up (first calls allocate memory and pick kernels)
                times[n]["attention_s"].append(attention_s)
                times[n]["projections_s"].append(projections_s)
    rows = []
    for n, (x, q, k, v) in cases.items():
        with TensorMemoryMeter() as meter:
            scaled_dot_product_attention(q, k, v)
        rows.append({"n": n, "attention_s": statistics.median(times[n]["attention_s"]),
                     "projections_s": statistics.median(times[n]["projections_s"]),
                     "peak_mib": meter.peak_bytes / 2**20, "score_matrix_mib": n_heads * n * n * 4 / 2**20})
    return rows


def fit_power_law(x: Any, y: Any) -> tuple[float, float]:
    """Fit y ≈ c·x^p by least squares on log-log axes; returns (p, c)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("fit_power_law needs at least two points with positive x and y")
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return float(slope), float(np.exp(intercept))

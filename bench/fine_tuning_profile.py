"""Where the seconds of lesson 07's fine-tuning go, and which changes make a step cheaper.

    python bench/fine_tuning_profile.py               # ~6 minutes on 2 CPU cores
    python bench/fine_tuning_profile.py --steps 10    # a quick look

The job is lesson 07's default: MiniLM + a new head on the whole Rotten Tomatoes training split, batch 32,
AdamW (fused) with decay groups, clipping at 1.0, length-grouped batches, 2 torch threads. Each variant
changes one thing, starts from the same pretrained weights, runs a few warm-up steps and then ``--steps``
timed steps, split into data (collating), forward, backward and optimizer (clipping + AdamW) seconds; CPU
work is synchronous, so the split is exact there. Also timed: tokenizing the split, and one validation
pass. Writes bench/results/fine_tuning_profile.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

from transfer_utils import fine_tuning as tc
from transfer_utils import training
from transfer_utils.core.runtime import seed_everything, set_threads
from transfer_utils.core.storage import atomic_write_text
from transfer_utils.data import datasets
from transfer_utils.models.pretrained import load_text_classifier, load_tokenizer

RESULTS = Path(__file__).parent / "results" / "fine_tuning_profile.md"
PHASES = ("data", "forward", "backward", "optimizer")
KEPT = ("What the course keeps: per-batch padding with length-grouped batches, 2 threads and fused AdamW (already "
        "its setting), and bf16 autocast where the processor has bf16 instructions (`mixed_precision=\"auto\"` in "
        "lessons 07 and 11, `training.precision`). Not kept: frozen word embeddings (it changes the method: "
        "lesson 07 teaches full fine-tuning) and `torch.compile` (no faster per step in the table above, after "
        "minutes of compiling).")


def freeze_word_embeddings(model: torch.nn.Module) -> None:
    """Stop training the token-embedding table (half of MiniLM's numbers, a dense gradient every step)."""
    model.get_input_embeddings().weight.requires_grad_(False)


def time_steps(model: torch.nn.Module, loader: Any, steps: int, warmup: int, *, fused: bool | None = True,
               autocast: bool = False) -> dict[str, float]:
    """Median seconds per phase over ``steps`` training steps, after ``warmup`` untimed ones."""
    optimizer = torch.optim.AdamW(tc.decay_parameter_groups(model, 0.01), lr=1e-4, fused=fused,
                                  foreach=None if fused else False)
    model.train()
    batches = iter(loader)
    rows: list[dict[str, float]] = []
    tokens = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        cast = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with cast:
            loss = model(**batch).loss
        t2 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        t4 = time.perf_counter()
        if i >= warmup:
            rows.append({"data": t1 - t0, "forward": t2 - t1, "backward": t3 - t2, "optimizer": t4 - t3})
            tokens.append(batch["input_ids"].numel())
    result = {phase: statistics.median(r[phase] for r in rows) for phase in PHASES}
    result["step"] = statistics.median(sum(r.values()) for r in rows)
    result["positions"] = statistics.mean(tokens)
    return result


def variants(data: tc.TokenizedTexts, tokenizer: Any, batch_size: int) -> dict[str, dict[str, Any]]:
    """Each variant: the loader it trains on, and what it does to the model or the step."""
    grouped = tc.text_loader(data, tokenizer, batch_size, shuffle=True, seed=0)
    unsorted = tc.text_loader(data, tokenizer, batch_size, shuffle=True, group_by_length=False, seed=0)
    fixed_length = torch.utils.data.DataLoader(
        data, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0),
        collate_fn=lambda items: dict(tokenizer.pad(items, padding="max_length", max_length=data.max_length,
                                                    return_tensors="pt")))
    return {
        "float32 setting (grouped by length, fused AdamW, 2 threads)": {"loader": grouped},
        "random batches (padded to each batch's longest)": {"loader": unsorted},
        f"every batch padded to max_length={data.max_length}": {"loader": fixed_length},
        "1 torch thread": {"loader": grouped, "threads": 1},
        "AdamW as a for-loop over tensors (fused=False, foreach=False)": {"loader": grouped, "fused": False},
        "word embeddings frozen": {"loader": grouped, "prepare": freeze_word_embeddings},
        "bf16 autocast": {"loader": grouped, "autocast": True},
        "torch.compile (dynamic shapes)": {"loader": grouped, "compile": True},
    }


def run_variant(name: str, spec: dict[str, Any], threads: int, steps: int, warmup: int) -> dict[str, Any]:
    """Fresh pretrained model, the variant's change, then timed steps."""
    seed_everything(0)
    _, model = load_text_classifier("minilm", num_labels=2)
    prepare: Callable | None = spec.get("prepare")
    if prepare:
        prepare(model)
    set_threads(spec.get("threads", threads))
    compile_seconds = None
    if spec.get("compile"):
        started = time.perf_counter()
        model = torch.compile(model, dynamic=True)
        warm = time_steps(model, spec["loader"], 1, 2)  # the first calls compile
        compile_seconds = time.perf_counter() - started - warm["step"]
    try:
        result = time_steps(model, spec["loader"], steps, warmup, fused=spec.get("fused", True),
                            autocast=spec.get("autocast", False))
    finally:
        set_threads(threads)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"variant": name, **result, "compile_seconds": compile_seconds, "trainable": trainable}


def headline(rows: list[dict[str, Any]]) -> str:
    """One sentence for the README: each variant's seconds per step as a multiple of the course setting."""
    base = rows[0]["step"]
    parts = [f"{r['variant'].split(' (')[0]} {r['step'] / base:.2f}" for r in rows[1:] if "error" not in r]
    return (f"**Headline.** Seconds per training step of lesson 07's job, as a multiple of the float32 setting "
            f"({base:.2f} s): " + "; ".join(parts) + ".")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (allocator, caches)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[], help="variants to leave out (a word of their name)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    threads = set_threads(args.threads)
    load_before = os.getloadavg()[0]
    snippets = datasets.load_rotten_tomatoes()
    tokenizer = load_tokenizer("minilm")
    started = time.perf_counter()
    data = tc.TokenizedTexts(snippets.train.x, snippets.train.y, tokenizer)
    tokenize_seconds = time.perf_counter() - started
    rows = []
    for name, spec in variants(data, tokenizer, args.batch_size).items():
        if any(word in name for word in args.skip):
            continue
        try:
            rows.append(run_variant(name, spec, threads, args.steps, args.warmup))
        except Exception as error:  # a variant this machine cannot run is reported, not fatal
            rows.append({"variant": name, "error": f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"})
        print(rows[-1], flush=True)
    _, model = load_text_classifier("minilm", num_labels=2)
    val = tc.TokenizedTexts(snippets.val.x, snippets.val.y, tokenizer)
    eval_seconds = {}
    for label, loader in {"sorted by length, batch 128": tc.text_loader(val, tokenizer, 128),
                          "dataset order, batch 128": tc.text_loader(val, tokenizer, 128, group_by_length=False)}.items():
        started = time.perf_counter()
        training.evaluate(model, loader)
        eval_seconds[label] = time.perf_counter() - started
    load_after = os.getloadavg()[0]

    base = rows[0]
    steps_per_epoch = -(-len(data) // args.batch_size)
    lines = [
        "# Where lesson 07's fine-tuning spends its time",
        "",
        f"Written by `python bench/fine_tuning_profile.py --steps {args.steps}` on {datetime.date.today()}: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, {threads} torch threads, "
        f"torch {torch.__version__}. Load average {load_before:.1f} before and {load_after:.1f} after (above "
        f"{os.cpu_count()} means other processes shared the cores: compare ratios, not seconds).",
        "",
        f"Job: MiniLM + new head, Rotten Tomatoes training split ({len(data):,} snippets, {steps_per_epoch} steps "
        f"of batch {args.batch_size} per epoch). Medians of {args.steps} timed steps after {args.warmup} warm-up steps.",
        "",
        "| variant | s / step | data | forward | backward | optimizer | ÷ float32 setting | positions / batch | trained numbers |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['variant']} | failed: {r['error']} | | | | | | | |")
            continue
        extra = f" (+{r['compile_seconds']:.0f} s compiling)" if r.get("compile_seconds") else ""
        lines.append(f"| {r['variant']} | {r['step']:.3f}{extra} | {r['data']:.3f} | {r['forward']:.3f} | "
                     f"{r['backward']:.3f} | {r['optimizer']:.3f} | {r['step'] / base['step']:.2f} | "
                     f"{r['positions']:.0f} | {r['trainable']:,} |")
    lines.insert(2, headline(rows) + "\n")
    lines += ["", f"Tokenizing the training split once: {tokenize_seconds:.1f} s. One validation pass "
              f"({len(val):,} snippets): " + "; ".join(f"{k} {v:.1f} s" for k, v in eval_seconds.items()) + "."]
    lines += ["", KEPT]
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

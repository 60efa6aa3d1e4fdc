"""Our training loop vs a plain PyTorch loop vs the Hugging Face Trainer, on one small fine-tuning job.

    python bench/training_loop.py                      # ~6 minutes on 2 CPU cores
    python bench/training_loop.py --train 512 --repeats 1

Same data (a stratified sample of the Rotten Tomatoes training split), same model (MiniLM, new head),
same hyper-parameters (AdamW with decay groups, warm-up + linear decay, clipping at 1.0, batches grouped
by length); each loop starts from the same pretrained weights. Timed: training only (wall and CPU
seconds of this process); accuracy on a fixed test sample. Loops run in alternating order, ``--repeats``
times; the table reports medians and ratios to the plain loop. Writes bench/results/training_loop.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from transfer_utils.data import datasets
from transfer_utils import fine_tuning as tc
from transfer_utils.models.pretrained import load_text_classifier, load_tokenizer
from transfer_utils.core.runtime import seed_everything, set_threads
from transfer_utils.core.storage import atomic_write_text

RESULTS = Path(__file__).parent / "results" / "training_loop.md"


def plain_loop(model, tokenizer, data: tc.TokenizedTexts, config: tc.FineTuneConfig) -> None:
    """The textbook loop, written out: no history, no validation, no callbacks."""
    torch.manual_seed(config.seed)
    loader = tc.text_loader(data, tokenizer, config.batch_size, shuffle=True, seed=config.seed)
    optimizer = torch.optim.AdamW(tc.decay_parameter_groups(model, config.weight_decay), lr=config.lr, fused=True)
    total = config.total_steps(len(data))
    scheduler = tc.warmup_linear_schedule(optimizer, config.warmup_steps(len(data)), total)
    model.train()
    for _ in range(config.epochs):
        for batch in loader:
            loss = model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
            optimizer.step()
            scheduler.step()


def run_one(name: str, data: tc.TokenizedTexts, test: datasets.Part, config: tc.FineTuneConfig) -> dict:
    """Fine-tune a fresh copy of the pretrained model with one loop; time it; score the test sample."""
    seed_everything(config.seed)
    tokenizer, model = load_text_classifier("minilm", num_labels=2)
    started, cpu_started = time.perf_counter(), time.process_time()
    if name == "course loop (training.fit)":
        tc.fine_tune(model, tokenizer, data, None, config, progress=False)
    elif name == "plain PyTorch loop":
        plain_loop(model, tokenizer, data, config)
    else:
        with tempfile.TemporaryDirectory() as output_dir:
            tc.trainer_fine_tune(model, tokenizer, data, None, config, output_dir)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    accuracy = float(np.mean(tc.text_logits(model, tokenizer, test.x).argmax(-1).numpy() == test.y))
    return {"loop": name, "seconds": seconds, "cpu_seconds": cpu_seconds, "accuracy": accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=1024, help="training snippets")
    parser.add_argument("--test", type=int, default=1000, help="test snippets scored")
    parser.add_argument("--epochs", type=int, default=3, help="passes over the training snippets (1 is too few to leave the majority class)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    threads = set_threads(args.threads)
    snippets = datasets.load_rotten_tomatoes()
    train = datasets.sample_n(snippets.train, args.train, seed=0)
    test = datasets.sample_n(snippets.test, args.test, seed=0)
    tokenizer = load_tokenizer("minilm")
    data = tc.TokenizedTexts(train.x, train.y, tokenizer)
    config = tc.FineTuneConfig(lr=1e-4, batch_size=32, epochs=args.epochs, seed=0)
    loops = ["plain PyTorch loop", "course loop (training.fit)", "Hugging Face Trainer"]
    load_before = os.getloadavg()[0]
    rows = []
    for repeat in range(args.repeats):
        for name in loops if repeat % 2 == 0 else loops[::-1]:
            rows.append(run_one(name, data, test, config))
            print(f"repeat {repeat}: {name:28s} {rows[-1]['seconds']:6.1f} s  cpu {rows[-1]['cpu_seconds']:6.1f} s  "
                  f"accuracy {rows[-1]['accuracy']:.3f}", flush=True)
    load_after = os.getloadavg()[0]
    median = {name: {k: statistics.median(r[k] for r in rows if r["loop"] == name)
                     for k in ("seconds", "cpu_seconds", "accuracy")} for name in loops}
    base = median["plain PyTorch loop"]
    lines = [
        "# Training loops on one fine-tuning job",
        "",
        f"Written by `python bench/training_loop.py` on {datetime.date.today()}: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores, {threads} torch threads, torch {torch.__version__}, "
        f"transformers {__import__('transformers').__version__}. Load average {load_before:.1f} before and "
        f"{load_after:.1f} after the run (above {os.cpu_count()} means other processes shared the cores, "
        "so compare the ratios, not the seconds).",
        "",
        f"Job: MiniLM + new head, {args.train} training snippets, {args.epochs} epoch(s) of batch {config.batch_size} "
        f"({config.total_steps(args.train)} steps), lr {config.lr:g}, warm-up {config.warmup_ratio:.0%}, "
        f"weight decay {config.weight_decay} (not on biases / LayerNorm), clipping {config.clip_grad_norm}, "
        f"length-grouped batches; accuracy on {args.test} test snippets. Medians of {args.repeats} run(s) per loop.",
        "",
        "| loop | train seconds | CPU seconds | seconds ÷ plain loop | test accuracy |",
        "|---|---|---|---|---|",
    ]
    for name in loops:
        m = median[name]
        lines.append(f"| {name} | {m['seconds']:.1f} | {m['cpu_seconds']:.1f} | "
                     f"{m['seconds'] / base['seconds']:.2f} | {m['accuracy']:.3f} |")
    lines += ["", "Every run:", "", "| loop | train seconds | CPU seconds | test accuracy |", "|---|---|---|---|"]
    lines += [f"| {r['loop']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['accuracy']:.3f} |" for r in rows]
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Our training loop vs a plain PyTorch loop, the Hugging Face Trainer and the accelerate path, on one job.

    python bench/training_loop.py                      # ~12 minutes on 2 CPU cores (300 steps per run)
    python bench/training_loop.py --train 512 --repeats 1

Same data (a stratified sample of the Rotten Tomatoes training split), same model (MiniLM, new head),
same hyper-parameters (AdamW with decay groups, warm-up + linear decay, clipping at 1.0, batches grouped
by length); each loop starts from the same pretrained weights. Timed: training only (wall and CPU
seconds of this process); accuracy on a fixed test sample. The accelerate path is the course loop
through ``training.distributed.accelerated_fit`` with one CPU process (what lesson 12 launches on several).
Loops run in alternating order, ``--repeats`` times; the table reports medians and ratios to the plain
loop and to the ``Trainer``. Writes bench/results/training_loop.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
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
from transfer_utils.training import distributed

RESULTS = Path(__file__).parent / "results" / "training_loop.md"
PLAIN, COURSE, TRAINER = "plain PyTorch loop", "course loop (training.fit)", "Hugging Face Trainer"
ACCELERATE = "course loop through accelerate (1 process)"


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


def accelerate_fine_tune(model, tokenizer, data: tc.TokenizedTexts, config: tc.FineTuneConfig) -> None:
    """The course loop through ``accelerate`` (one CPU process): the path lesson 12 launches on several."""
    loader = tc.text_loader(data, tokenizer, config.batch_size, shuffle=True, seed=config.seed)
    optimizer = torch.optim.AdamW(tc.decay_parameter_groups(model, config.weight_decay), lr=config.lr, fused=True)
    scheduler = tc.warmup_linear_schedule(optimizer, config.warmup_steps(len(data)), config.total_steps(len(data)))
    torch.manual_seed(config.seed)
    distributed.accelerated_fit(distributed.make_accelerator("cpu"), model, loader, optimizer, scheduler=scheduler,
                                epochs=config.epochs, clip_grad_norm=config.clip_grad_norm, progress=False)


def run_one(name: str, data: tc.TokenizedTexts, test: datasets.Part, config: tc.FineTuneConfig) -> dict:
    """Fine-tune a fresh copy of the pretrained model with one loop; time it; score the test sample."""
    seed_everything(config.seed)
    tokenizer, model = load_text_classifier("minilm", num_labels=2)
    started, cpu_started = time.perf_counter(), time.process_time()
    if name == COURSE:
        tc.fine_tune(model, tokenizer, data, None, config, progress=False)
    elif name == ACCELERATE:
        accelerate_fine_tune(model, tokenizer, data, config)
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
    parser.add_argument("--train", type=int, default=1600, help="training snippets")
    parser.add_argument("--test", type=int, default=1000, help="test snippets scored")
    parser.add_argument("--epochs", type=int, default=3, help="passes over the training snippets (1 is too few to leave the majority class)")
    parser.add_argument("--batch-size", type=int, default=16, help="16: 300 steps in 3 epochs of 1,600 snippets")
    parser.add_argument("--repeats", type=int, default=2, help="rounds; even rounds run the loops in reverse order")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    threads = set_threads(args.threads)
    snippets = datasets.load_rotten_tomatoes()
    train = datasets.sample_n(snippets.train, args.train, seed=0)
    test = datasets.sample_n(snippets.test, args.test, seed=0)
    tokenizer = load_tokenizer("minilm")
    data = tc.TokenizedTexts(train.x, train.y, tokenizer)
    config = tc.FineTuneConfig(lr=1e-4, batch_size=args.batch_size, epochs=args.epochs, seed=0)
    loops = [PLAIN, COURSE, TRAINER, ACCELERATE]
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
    base, trainer = median[PLAIN], median[TRAINER]
    steps = config.total_steps(args.train)
    command = " ".join(["python bench/training_loop.py", *sys.argv[1:]])
    lines = [
        "# Training loops on one fine-tuning job",
        "",
        f"Written by `{command}` on {datetime.date.today()}: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores, {threads} torch threads, torch {torch.__version__}, "
        f"transformers {__import__('transformers').__version__}. Load average {load_before:.1f} before and "
        f"{load_after:.1f} after the run (above {os.cpu_count()} means other processes shared the cores, "
        "so compare the ratios, not the seconds).",
        "",
        f"Job: MiniLM + new head, {args.train} training snippets, {args.epochs} epoch(s) of batch {config.batch_size} "
        f"({config.total_steps(args.train)} steps), lr {config.lr:g}, warm-up {config.warmup_ratio:.0%}, "
        f"weight decay {config.weight_decay} (not on biases / LayerNorm), clipping {config.clip_grad_norm}, "
        f"length-grouped batches; accuracy on {args.test} test snippets. Medians of {args.repeats} run(s) per loop, "
        "the order of the loops reversed every other round.",
        "",
        f"**Headline.** {steps} steps per run; seconds per step as a multiple of the plain loop: "
        + ", ".join(f"{name} {median[name]['seconds'] / base['seconds']:.3f}" for name in loops[1:])
        + f"; course loop ÷ `Trainer` {median[COURSE]['seconds'] / trainer['seconds']:.3f}; test accuracy "
        + ", ".join(f"{name} {median[name]['accuracy']:.3f}" for name in loops) + ".",
        "",
        "| loop | train seconds | seconds / step | CPU seconds | ÷ plain loop | ÷ Trainer | test accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in loops:
        m = median[name]
        lines.append(f"| {name} | {m['seconds']:.1f} | {m['seconds'] / steps:.3f} | {m['cpu_seconds']:.1f} | "
                     f"{m['seconds'] / base['seconds']:.3f} | {m['seconds'] / trainer['seconds']:.3f} | "
                     f"{m['accuracy']:.3f} |")
    lines += ["", "Every run:", "", "| loop | train seconds | CPU seconds | test accuracy |", "|---|---|---|---|"]
    lines += [f"| {r['loop']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['accuracy']:.3f} |" for r in rows]
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""How far lesson 07's fine-tuning gets in under five minutes of training on 2 CPU cores.

    python bench/fine_tuning_settings.py            # ~55 minutes on 2 bf16-capable CPU cores

Each run fine-tunes MiniLM (all-MiniLM-L6-v2) on the whole Rotten Tomatoes training split with
``tc.fine_tune`` (bf16 where the processor has it, early stopping on the validation split, the best
epoch's weights kept). Four settings, three repeats each:

- lesson 07's model, ``AutoModelForSequenceClassification``: a linear layer on the [CLS] token's vector
  after BERT's pooler (dense + tanh); seeds 0, 1, 2, one run at a time on 2 threads;
- ``text_heads.MeanPoolingClassifier``: a linear layer on the mean of the token vectors, the sentence
  vector all-MiniLM-L6-v2 was trained to produce; seeds 0, 1, 2, one run at a time on 2 threads;
- two mean-pooling runs *side by side*, one core each (``run_side_by_side``), their class probabilities
  averaged: seeds (0, 3), (1, 4), (2, 5). A MiniLM step is too small to keep two threads fully busy,
  so two one-thread runs at once train two models in well under twice the time of one two-thread run;
- the same pairs with the word embeddings frozen (half of MiniLM's 22.7M parameters, the part a
  two-epoch run on 9k snippets updates only for the words it sees): about 0.9 times the step time.

The setting to report is the one with the best mean *validation* accuracy; test accuracies are printed
for all, with paired comparisons (``evidence.compare``) and the constant predictor. "Training seconds"
is wall-clock time inside ``fine_tune`` (validation passes included); for a pair, the longer of its two
runs, which train at the same time. Writes bench/results/fine_tuning_settings.md.
"""

from __future__ import annotations

import datetime
import os
import platform
import time
from pathlib import Path

import numpy as np

from transfer_utils import fine_tuning as tc
from transfer_utils.core.evidence import compare, constant_baseline, spread, summarize
from transfer_utils.core.runtime import seed_everything, set_threads
from transfer_utils.core.storage import atomic_write_text
from transfer_utils.data import datasets
from transfer_utils.models.pretrained import load_text_classifier
from transfer_utils.models.text_heads import load_mean_pooling_classifier
from transfer_utils.training import precision
from transfer_utils.training.side_by_side import run_side_by_side

RESULTS = Path(__file__).parent / "results" / "fine_tuning_settings.md"
SEEDS = (0, 1, 2)
PARTNER = 3  # the second run of pair i has seed i + PARTNER
COMMON = dict(batch_size=32, lr=1e-4, epochs=2, patience=1, mixed_precision="auto")  # lesson 07's, 2 full epochs
CLS, MEAN, PAIR, PAIR_FROZEN = ("[CLS] + pooler head (lesson 07's model)", "mean-pooling head",
                                 "two mean-pooling runs side by side, probabilities averaged",
                                 "the same pairs, word embeddings frozen")
SINGLE = {CLS: load_text_classifier, MEAN: load_mean_pooling_classifier}
PAIRS = {PAIR: False, PAIR_FROZEN: True}  # setting: word embeddings frozen


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose most probable class is the label."""
    return float(np.mean(probabilities.argmax(-1) == labels))


def run(load, seed: int, snippets: datasets.Splits, freeze_words: bool = False) -> dict:
    """One fine-tuning run from the pretrained weights: steps, seconds, validation and test probabilities."""
    seed_everything(seed)
    tokenizer, model = load("minilm", num_labels=2)
    if freeze_words:  # the token embedding table; position and type embeddings still train
        getattr(model, "encoder", model).get_input_embeddings().weight.requires_grad_(False)
    config = tc.FineTuneConfig(seed=seed, **COMMON)
    train = config.tokenize(snippets.train.x, snippets.train.y, tokenizer)
    val = config.tokenize(snippets.val.x, snippets.val.y, tokenizer)
    result = tc.fine_tune(model, tokenizer, train, val, config, progress=False)
    val_p, test_p = (tc.predict_texts(model, tokenizer, texts, mixed_precision=result.precision)
                     for texts in (snippets.val.x, snippets.test.x))
    return {"seeds": str(seed), "steps": result.history.steps, "best_epoch": str(result.history.best_epoch),
            "seconds": result.seconds, "precision": result.precision, "val_p": val_p, "test_p": test_p,
            "val": accuracy(val_p, snippets.val.y), "test": accuracy(test_p, snippets.test.y)}


def averaged(pair: list[dict], snippets: datasets.Splits, wall: float) -> dict:
    """The two runs of a pair as one classifier: mean class probabilities; the longer run's seconds."""
    val_p, test_p = (np.mean([r[key] for r in pair], axis=0) for key in ("val_p", "test_p"))
    return {"seeds": " + ".join(r["seeds"] for r in pair), "steps": pair[0]["steps"],
            "best_epoch": " + ".join(r["best_epoch"] for r in pair), "seconds": max(r["seconds"] for r in pair),
            "wall": wall, "precision": pair[0]["precision"], "members": [r["test"] for r in pair],
            "val": accuracy(val_p, snippets.val.y), "test": accuracy(test_p, snippets.test.y)}


def processor_name() -> str:
    """The CPU's model name from /proc/cpuinfo (the setting's hardware), or the machine type."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def run_all(snippets: datasets.Splits) -> dict[str, list[dict]]:
    """Every run of the four settings, in the order the module docstring lists them."""
    runs = {name: [run(load, seed, snippets) for seed in SEEDS] for name, load in SINGLE.items()}
    for name, freeze_words in PAIRS.items():
        runs[name] = []
        for seed in SEEDS:
            started = time.perf_counter()
            pair = run_side_by_side(run, [(load_mean_pooling_classifier, s, snippets, freeze_words)
                                          for s in (seed, seed + PARTNER)], workers=2)
            runs[name].append(averaged(pair, snippets, time.perf_counter() - started))
    for name, rows in runs.items():
        for row in rows:
            print(name, {k: v for k, v in row.items() if not k.endswith("_p")}, flush=True)
    return runs


def main() -> None:
    set_threads(2)
    snippets = datasets.load_rotten_tomatoes()
    load_before = os.getloadavg()[0]
    runs = run_all(snippets)
    constant = constant_baseline(snippets.test.y)
    val_of = {name: [r["val"] for r in rows] for name, rows in runs.items()}
    test_of = {name: [r["test"] for r in rows] for name, rows in runs.items()}
    longest = {name: max(r["seconds"] for r in rows) for name, rows in runs.items()}
    chosen = max(runs, key=lambda name: spread(val_of[name])[0])
    others = "; ".join(f"{name} {summarize(test_of[name])}" for name in runs if name != chosen)
    verdicts = [compare(test_of[a], test_of[b], a, b).sentence("test accuracy")
                for a, b in ((MEAN, CLS), (PAIR, MEAN), (PAIR_FROZEN, PAIR))]
    bf16 = ", ".join(precision.cpu_bf16_flags()) or "none"
    lines = ["# Lesson 07's fine-tuning within five minutes of training on 2 CPU cores", "",
             f"**Headline.** Chosen on validation: {chosen}, test accuracy {summarize(test_of[chosen])}, "
             f"≤ {longest[chosen]:.0f} s of training; {others}; constant predictor {constant:.3f}.", "",
             f"Written by `python bench/fine_tuning_settings.py` on {datetime.date.today()}: {processor_name()}, "
             f"{os.cpu_count()} CPU cores, 2 torch threads (1 per run side by side), bf16 CPU flags: {bf16}; "
             f"load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after (above 2: other "
             "processes shared the cores).", "",
             "Setting: MiniLM (all-MiniLM-L6-v2), the whole training split "
             f"({len(snippets.train)} snippets), batch {COMMON['batch_size']}, lr {COMMON['lr']:g}, "
             f"{COMMON['epochs']} epochs, warm-up 10 %, weight decay 0.01, clipping 1.0, length-grouped batches, "
             "mixed precision 'auto'; the better epoch on validation kept. Training seconds: wall-clock inside "
             "`fine_tune`, validation passes included; for a pair, the longer of its two runs (they train at the "
             f"same time). Test: {len(snippets.test)} snippets, scored once per run. Validation: "
             f"{len(snippets.val)} snippets.", "", *[f"- {v}" for v in verdicts], "",
             "| setting | validation accuracy | test accuracy | training seconds (max) | steps per run |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {summarize(val_of[name])} | {summarize(test_of[name])} | {longest[name]:.0f} | "
              f"{rows[0]['steps']} |" for name, rows in runs.items()]
    lines += ["", "Every run (a pair's test accuracy is its averaged probabilities'; its members' own in brackets; "
              "its wall seconds include starting the two processes, loading and scoring):", "",
              "| setting | seeds | best epoch | precision | training seconds | validation | test |",
              "|---|---|---|---|---|---|---|"]
    for name, rows in runs.items():
        for r in rows:
            extra = (f" ({' / '.join(f'{m:.3f}' for m in r['members'])}; wall {r['wall']:.0f} s)"
                     if "members" in r else "")
            lines.append(f"| {name} | {r['seeds']} | {r['best_epoch']} | {r['precision']} | {r['seconds']:.0f} | "
                         f"{r['val']:.3f} | {r['test']:.3f}{extra} |")
    atomic_write_text(RESULTS, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

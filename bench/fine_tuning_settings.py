"""How far lesson 07's fine-tuning gets in under five minutes of training: which vector the head reads.

    python bench/fine_tuning_settings.py            # ~30 minutes on 2 bf16-capable CPU cores (2 settings x 3 seeds)

Each setting fine-tunes MiniLM (all-MiniLM-L6-v2) on the whole Rotten Tomatoes training split with
``tc.fine_tune`` (bf16 where the processor has it, early stopping on the validation split, the best
epoch's weights kept), on seeds 0, 1 and 2. The two settings differ only in the head:

- lesson 07's model, ``AutoModelForSequenceClassification``: a linear layer on the [CLS] token's vector
  after BERT's pooler (dense + tanh);
- ``text_heads.MeanPoolingClassifier``: a linear layer on the mean of the token vectors, the sentence
  vector all-MiniLM-L6-v2 was trained to produce.

The setting to report is the one with the best mean *validation* accuracy; test accuracies are printed
for both, with the paired comparison (``evidence.compare``) and the constant predictor. Writes
bench/results/fine_tuning_settings.md.
"""

from __future__ import annotations

import datetime
import os
import platform
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

RESULTS = Path(__file__).parent / "results" / "fine_tuning_settings.md"
SEEDS = (0, 1, 2)
COMMON = dict(batch_size=32, lr=1e-4, epochs=2, patience=1, mixed_precision="auto")  # lesson 07's, 2 full epochs
LOADERS = {"[CLS] + pooler head (lesson 07's model)": load_text_classifier,
           "mean-pooling head": load_mean_pooling_classifier}


def run(load, seed: int, snippets: datasets.Splits) -> dict:
    """One fine-tuning run from the pretrained weights; its steps, seconds, validation and test accuracy."""
    seed_everything(seed)
    tokenizer, model = load("minilm", num_labels=2)
    config = tc.FineTuneConfig(seed=seed, **COMMON)
    train = config.tokenize(snippets.train.x, snippets.train.y, tokenizer)
    val = config.tokenize(snippets.val.x, snippets.val.y, tokenizer)
    result = tc.fine_tune(model, tokenizer, train, val, config, progress=False)
    logits = tc.text_logits(model, tokenizer, snippets.test.x, mixed_precision=result.precision)
    return {"seed": seed, "steps": result.history.steps, "best_epoch": result.history.best_epoch,
            "seconds": result.seconds, "precision": result.precision, "val": result.history.best_score,
            "test": float(np.mean(logits.argmax(-1).numpy() == snippets.test.y))}


def processor_name() -> str:
    """The CPU's model name from /proc/cpuinfo (the setting's hardware), or the machine type."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    set_threads(2)
    snippets = datasets.load_rotten_tomatoes()
    load_before = os.getloadavg()[0]
    runs = {}
    for name, load in LOADERS.items():
        runs[name] = [run(load, seed, snippets) for seed in SEEDS]
        for row in runs[name]:
            print(name, row, flush=True)
    constant = constant_baseline(snippets.test.y)
    val_of = {name: [r["val"] for r in rows] for name, rows in runs.items()}
    test_of = {name: [r["test"] for r in rows] for name, rows in runs.items()}
    chosen = max(runs, key=lambda name: spread(val_of[name])[0])
    other = next(name for name in runs if name != chosen)
    longest = max(r["seconds"] for r in runs[chosen])
    verdict = compare(test_of[chosen], test_of[other], chosen, other).sentence("test accuracy")
    bf16 = ", ".join(precision.cpu_bf16_flags()) or "none"
    lines = ["# Lesson 07's fine-tuning within five minutes of training: [CLS] head or mean-pooling head", "",
             f"**Headline.** Chosen on validation: {chosen}, test accuracy {summarize(test_of[chosen])}, "
             f"each run ≤ {longest:.0f} s of training on 2 CPU cores; {other} "
             f"{summarize(test_of[other])}; constant predictor {constant:.3f}.", "",
             f"Written by `python bench/fine_tuning_settings.py` on {datetime.date.today()}: {processor_name()}, "
             f"{os.cpu_count()} CPU cores, 2 torch threads, bf16 CPU flags: {bf16}; load average "
             f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after (above 2: other processes shared the "
             "cores).", "",
             "Setting: MiniLM (all-MiniLM-L6-v2), the whole training split "
             f"({len(snippets.train)} snippets), batch {COMMON['batch_size']}, lr {COMMON['lr']:g}, "
             f"{COMMON['epochs']} epochs, warm-up 10 %, weight decay 0.01, clipping 1.0, length-grouped batches, "
             "mixed precision 'auto'; the better epoch on validation kept. Training seconds include the "
             f"validation passes. Test: {len(snippets.test)} snippets, scored once per run.", "",
             f"{verdict}", "",
             "| head | validation accuracy | test accuracy | training seconds (max) | steps |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {summarize(val_of[name])} | {summarize(test_of[name])} | "
              f"{max(r['seconds'] for r in rows):.0f} | {rows[0]['steps']} |" for name, rows in runs.items()]
    lines += ["", "Every run:", "", "| head | seed | best epoch | precision | training seconds | validation | test |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {r['seed']} | {r['best_epoch']} | {r['precision']} | {r['seconds']:.0f} | {r['val']:.3f} | "
              f"{r['test']:.3f} |" for name, rows in runs.items() for r in rows]
    atomic_write_text(RESULTS, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

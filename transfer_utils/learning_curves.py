"""Learning curves: test accuracy against the number of labelled examples, per method, over seeds.

A *method* is any function ``(labelled, seed) -> accuracy`` that trains on the labelled examples and
scores on a fixed test set. ``learning_curve`` draws the labelled subsets (the same subsets for every
method, so methods are compared on equal data) and returns one row per (n, seed, method).

Lessons: 01.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from transfer_utils.data.datasets import Part, sample_n
from transfer_utils.training import steps_for

Method = Callable[[Part, int], float]


def labelled_subsets(pool: Part, sizes: Sequence[int], seeds: Sequence[int]) -> dict[tuple[int, int], Part]:
    """The labelled training set for every (n, seed): stratified samples of ``pool``."""
    return {(n, seed): sample_n(pool, n, seed=seed) for n in sizes for seed in seeds}


def learning_curve(methods: dict[str, Method], subsets: dict[tuple[int, int], Part],
                   progress: bool = True) -> list[dict[str, object]]:
    """Rows ``{n, method, seed, accuracy, seconds}``: every method trained on every labelled subset."""
    rows = []
    jobs = [(key, name) for key in subsets for name in methods]
    for (n, seed), name in tqdm(jobs, desc="learning curve", disable=not progress, mininterval=1.0):
        started = time.perf_counter()
        accuracy = float(methods[name](subsets[(n, seed)], seed))
        rows.append({"n": n, "method": name, "seed": seed, "accuracy": accuracy,
                     "seconds": time.perf_counter() - started})
    return rows


def mean_accuracy(rows: Sequence[dict[str, object]], n: int, method: str) -> float:
    """Seed-mean accuracy of ``method`` at ``n`` labels."""
    values = [r["accuracy"] for r in rows if r["n"] == n and r["method"] == method]
    if not values:
        raise KeyError(f"no rows for method {method!r} at n={n}")
    return float(np.mean(values))


def means_at(rows: Sequence[dict[str, object]], n: int) -> dict[str, float]:
    """Seed-mean accuracy of every method that was run at ``n`` labels."""
    return {m: mean_accuracy(rows, n, m) for m in dict.fromkeys(r["method"] for r in rows if r["n"] == n)}


def gain_at(rows: Sequence[dict[str, object]], n: int, transfer: Sequence[str], baseline: Sequence[str]) -> float:
    """Best seed-mean accuracy among ``transfer`` methods minus the best among ``baseline`` (those run at n)."""
    means = means_at(rows, n)
    best = {}
    for group, names in (("transfer", transfer), ("baseline", baseline)):
        present = [means[m] for m in names if m in means]
        if not present:
            raise KeyError(f"none of the {group} methods {list(names)} was run at n={n}")
        best[group] = max(present)
    return best["transfer"] - best["baseline"]


def training_steps(n: int, batch_size: int, epochs: int, min_steps: int, max_steps: int) -> int:
    """Optimizer steps for ``n`` examples: ``epochs`` passes, but at least ``min_steps`` and at most ``max_steps``."""
    return min(max(steps_for(epochs, n, batch_size), min_steps), max_steps)

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
import torch
from torch import nn
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


class BagOfEmbeddings(nn.Module):
    """A text classifier learnt from scratch: the mean of word-piece embeddings, then a linear layer (fastText-like)."""

    def __init__(self, vocab_size: int, dim: int = 64, num_labels: int = 2) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, dim, mode="mean")
        self.classifier = nn.Linear(dim, num_labels)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embedding(ids, offsets))


def _bags(token_lists: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists → the flat ids and start offsets that ``nn.EmbeddingBag`` reads."""
    lengths = torch.tensor([len(tokens) for tokens in token_lists])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
    ids = torch.tensor([t for tokens in token_lists for t in tokens], dtype=torch.long)
    return ids, offsets


def train_bag_of_embeddings(token_lists: Sequence[Sequence[int]], labels: np.ndarray, vocab_size: int, *,
                            lr: float, epochs: int, seed: int, dim: int = 64, batch_size: int = 32,
                            num_labels: int = 2) -> BagOfEmbeddings:
    """Train a ``BagOfEmbeddings`` from random weights with Adam on shuffled mini-batches."""
    if len(token_lists) != len(labels) or len(labels) == 0:
        raise ValueError(f"need as many token lists as labels, and at least one ({len(token_lists)} vs {len(labels)})")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = BagOfEmbeddings(vocab_size, dim, num_labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    targets = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    for _ in range(epochs):
        for rows in torch.randperm(len(targets), generator=generator).split(batch_size):
            ids, offsets = _bags([token_lists[i] for i in rows.tolist()])
            loss = nn.functional.cross_entropy(model(ids, offsets), targets[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


@torch.no_grad()
def bag_predict(model: BagOfEmbeddings, token_lists: Sequence[Sequence[int]]) -> np.ndarray:
    """Predicted class of each token list."""
    model.eval()
    return model(*_bags(token_lists)).argmax(dim=1).numpy()

"""Evidence: the sentences a lesson states about its results, computed from the run's own numbers.

The course's rules (CONTRIBUTING.md, "Evidence rules"): a measured number or a comparison outcome in
a lesson's prose is rendered from the run, never typed by hand; a comparison rests on at least three
seeds and says "no clear difference" when the spread covers the gap; every accuracy or F1 is shown
beside what a constant predictor scores.

    spread / summarize   mean ± standard deviation over seeds, as numbers and as text
    compare              A vs B over paired seeds: which is better, or no clear difference
    constant_baseline    the best accuracy / F1 a predictor that ignores its input can reach
    Claims               sentences that hold or are turned around by the numbers, recorded for the metrics file

Lessons: 00, 01, 02, 03, 04, 05, 06, 07, 08, 09, 10, 11, 12.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

MIN_SEEDS = 3  # fewer seeds cannot show a spread worth the name


def _values(values: Sequence[float], name: str) -> np.ndarray:
    """Finite floats as an array, or a clear error."""
    array = np.asarray(values, dtype=float).ravel()
    if array.size == 0 or not np.isfinite(array).all():
        raise ValueError(f"{name} needs finite numbers, got {list(values)!r}")
    return array


def spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    array = _values(values, "spread")
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def summarize(values: Sequence[float], digits: int = 3) -> str:
    """``0.781 ± 0.012 (3 seeds)``: the form every comparison in the course is printed in."""
    mean, std = spread(values)
    n = len(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f} ({n} seed{'s' if n != 1 else ''})"


@dataclass
class Comparison:
    """A against B over the same seeds: the paired differences and what they allow one to say."""

    name_a: str
    name_b: str
    a: list[float]
    b: list[float]
    z: float = 2.0  # how many standard errors the mean gap must exceed to count as clear
    min_seeds: int = MIN_SEEDS
    differences: list[float] = field(init=False)

    def __post_init__(self) -> None:
        a, b = _values(self.a, self.name_a), _values(self.b, self.name_b)
        if a.shape != b.shape:
            raise ValueError(f"{self.name_a} has {a.size} values but {self.name_b} has {b.size}: pair them by seed")
        self.differences = (a - b).tolist()

    @property
    def gap(self) -> float:
        """Mean of A − B."""
        return float(np.mean(self.differences))

    @property
    def standard_error(self) -> float:
        """Standard error of the mean paired difference (0 with one seed)."""
        n = len(self.differences)
        return float(np.std(self.differences, ddof=1) / math.sqrt(n)) if n > 1 else 0.0

    @property
    def enough_seeds(self) -> bool:
        """True when there are at least ``min_seeds`` pairs."""
        return len(self.differences) >= self.min_seeds

    @property
    def clear(self) -> bool:
        """True when the mean gap exceeds ``z`` standard errors (and there are enough seeds)."""
        return self.enough_seeds and abs(self.gap) > self.z * self.standard_error and self.gap != 0

    @property
    def winner(self) -> str | None:
        """The better name when the difference is clear, else None."""
        if not self.clear:
            return None
        return self.name_a if self.gap > 0 else self.name_b

    def sentence(self, metric: str = "accuracy", digits: int = 3) -> str:
        """One sentence that states what the numbers support, and no more."""
        a, b = summarize(self.a, digits), summarize(self.b, digits)
        gap = f"{self.gap:+.{digits}f} ± {self.standard_error:.{digits}f}"
        if not self.enough_seeds:
            return (f"Too few seeds to compare {metric}: {self.name_a} {a} vs {self.name_b} {b} "
                    f"(at least {self.min_seeds} needed).")
        if self.winner is None:
            return (f"No clear difference in {metric}: {self.name_a} {a} vs {self.name_b} {b} "
                    f"(paired gap {gap}, within the seed-to-seed spread).")
        loser = self.name_b if self.winner == self.name_a else self.name_a
        return (f"Clear difference in {metric}, in favour of {self.winner} over {loser}: "
                f"{self.name_a} {a} vs {self.name_b} {b} (paired gap {gap}).")

    def as_metrics(self, prefix: str) -> dict[str, float]:
        """Numbers for the metrics file: both means, the gap, its standard error, and 1/0 for clear."""
        return {f"{prefix}_mean_a": spread(self.a)[0], f"{prefix}_mean_b": spread(self.b)[0],
                f"{prefix}_gap": self.gap, f"{prefix}_gap_se": self.standard_error,
                f"{prefix}_clear": int(self.clear), f"{prefix}_seeds": len(self.differences)}


def compare(a: Sequence[float], b: Sequence[float], name_a: str = "A", name_b: str = "B", *,
            z: float = 2.0, min_seeds: int = MIN_SEEDS) -> Comparison:
    """Compare two methods scored on the same seeds (position i of ``a`` and ``b`` is seed i)."""
    return Comparison(name_a, name_b, list(a), list(b), z, min_seeds)


def constant_baseline(y_true: Sequence[int], metric: str = "accuracy", positive: int = 1) -> float:
    """The best score of a predictor that always answers the same class.

    ``accuracy``: the majority class's share. ``f1``: F1 of class ``positive`` when always answering
    ``positive`` (2p / (1 + p) with p its share): high when the positive class is common, so an F1 of
    the larger class is never immune to class imbalance. ``macro_f1``: the best constant answer's
    macro-averaged F1.
    """
    y = np.asarray(y_true).ravel()
    if y.size == 0:
        raise ValueError("constant_baseline needs at least one label")
    classes, counts = np.unique(y, return_counts=True)
    shares = counts / counts.sum()
    if metric == "accuracy":
        return float(shares.max())
    if metric == "f1":
        p = float(np.mean(y == positive))
        return 2 * p / (1 + p) if p > 0 else 0.0
    if metric == "macro_f1":
        return float(max(2 * s / (1 + s) for s in shares) / len(classes))
    raise ValueError(f"metric must be 'accuracy', 'f1' or 'macro_f1', got {metric!r}")


@dataclass
class Claims:
    """Sentences whose truth the run decides, kept in order for the summary and the metrics file."""

    records: list[dict[str, object]] = field(default_factory=list)

    def claim(self, name: str, holds: bool, if_true: str, if_false: str) -> str:
        """State ``if_true`` when ``holds``, else ``if_false``; remember which one was said."""
        holds = bool(holds)
        text = if_true if holds else if_false
        self.records.append({"claim": name, "holds": holds, "text": text})
        return text

    def comparison(self, name: str, result: Comparison, metric: str = "accuracy") -> str:
        """State a comparison's sentence; it "holds" when A is clearly better than B."""
        text = result.sentence(metric)
        self.records.append({"claim": name, "holds": result.winner == result.name_a, "text": text})
        return text

    def markdown(self, title: str = "What this run showed") -> str:
        """The claims as a Markdown list (display with ``IPython.display.Markdown``)."""
        return f"**{title}.**\n\n" + "\n".join(f"- {r['text']}" for r in self.records)

    def as_metrics(self) -> dict[str, list[dict[str, object]]]:
        """``{"claims": [{claim, holds, text}, ...]}`` for ``lesson.save_metrics``."""
        return {"claims": [dict(r) for r in self.records]}

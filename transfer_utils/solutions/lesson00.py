"""Reference answers to lesson 00's exercises: the majority-class baseline and a dataset's largest class.

Exercise 3 (mean pooling) is checked against ``transfer_utils.models.embeddings.mean_pool``, the function
the lesson's encoder uses.

Lessons: 00.
"""

from __future__ import annotations

import numpy as np

from transfer_utils.data.datasets import Splits


def majority_accuracy(train_y: np.ndarray, test_y: np.ndarray) -> float:
    """Accuracy on ``test_y`` of always answering the commonest ``train_y`` label (the smaller on a tie)."""
    most_common = np.bincount(np.asarray(train_y)).argmax()
    return float(np.mean(np.asarray(test_y) == most_common))


def largest_class(splits: Splits) -> tuple[str, int]:
    """Name of the commonest class in the training split and how many training examples it has."""
    counts = np.bincount(splits.train.y, minlength=len(splits.classes))
    return splits.classes[int(counts.argmax())], int(counts.max())

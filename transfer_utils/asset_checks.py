"""A real load of each asset, returning a one-line summary (used by ``assets.status``)."""

from __future__ import annotations

from typing import Callable

import torch

from transfer_utils import datasets
from transfer_utils.models import count_parameters, load_image_backbone, load_text_encoder


def _minilm() -> str:
    """Load the MiniLM encoder and embed one sentence."""
    tokenizer, model = load_text_encoder("minilm")
    with torch.no_grad():
        out = model(**tokenizer(["Transfer learning reuses what a model already knows."], return_tensors="pt"))
    return (f"{model.config.model_type}, {model.config.num_hidden_layers} layers, hidden {model.config.hidden_size}, "
            f"{count_parameters(model) / 1e6:.1f}M parameters, output {tuple(out.last_hidden_state.shape)}")


def _efficientnet() -> str:
    """Load EfficientNet-Lite0 and classify the skimage cat photo."""
    backbone = load_image_backbone("efficientnet_lite0")
    photo = datasets.load_photos(["chelsea"])["chelsea"]
    with torch.no_grad():
        probs = backbone.classifier(backbone.preprocess(photo[None])).softmax(-1)[0]
    top = int(probs.argmax())
    return (f"{count_parameters(backbone.classifier) / 1e6:.1f}M parameters; "
            f"chelsea.png → {backbone.categories[top]!r} ({probs[top]:.2f})")


def _splits(loader: Callable[[], datasets.Splits]) -> Callable[[], str]:
    """A check that loads a dataset and reports its split sizes and class count."""
    def check() -> str:
        s = loader()
        return f"{len(s.train)}/{len(s.val)}/{len(s.test)} train/val/test, {len(s.classes)} classes"
    return check


def _photos() -> str:
    """Load the bundled photos and faces."""
    photos = datasets.load_photos()
    faces = datasets.load_faces()
    sizes = ", ".join(f"{k} {v.shape[1]}x{v.shape[0]}" for k, v in list(photos.items())[:4])
    return f"{len(photos)} photos ({sizes}, ...); {len(faces.train) + len(faces.val) + len(faces.test)} face/non-face patches"


LOAD_CHECKS: dict[str, Callable[[], str]] = {
    "minilm": _minilm,
    "efficientnet_lite0": _efficientnet,
    "rotten_tomatoes": _splits(datasets.load_rotten_tomatoes),
    "bbc_news": _splits(datasets.load_bbc_news),
    "tweets": _splits(datasets.load_tweets),
    "mnist_5k": _splits(datasets.load_mnist_5k),
    "sklearn_digits": _splits(datasets.load_sklearn_digits),
    "fashion_mnist": _splits(datasets.load_fashion_mnist),
    "skimage_photos": _photos,
}

"""Every asset loaded for real: a one-line summary each, and the status table of lesson 00 and ``python -m transfer_utils assets``."""

from __future__ import annotations

import time
from typing import Callable

import torch

from transfer_utils.data import assets, datasets
from transfer_utils.models.parts import count_parameters
from transfer_utils.models.pretrained import load_image_backbone, load_text_encoder


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
    "chatterbot_questions": _splits(datasets.load_chatterbot_questions),
    "bbc_news": _splits(datasets.load_bbc_news),
    "tweets": _splits(datasets.load_tweets),
    "mnist_5k": _splits(datasets.load_mnist_5k),
    "sklearn_digits": _splits(datasets.load_sklearn_digits),
    "fashion_mnist": _splits(datasets.load_fashion_mnist),
    "skimage_photos": _photos,
}


def status(load: bool = True) -> list[dict[str, object]]:
    """One row per asset: present or not, where, and (with ``load``) a real load check with its summary."""
    rows = []
    for asset in assets.ASSETS.values():
        row: dict[str, object] = {"asset": asset.name, "kind": asset.kind, "status": "missing",
                                  "detail": asset.install, "seconds": 0.0}
        started = time.perf_counter()
        try:
            where = asset.path()
            row.update(status="present", detail=str(where))
            if load:
                row.update(status="loads", detail=LOAD_CHECKS[asset.name]())
        except Exception as exc:  # a broken asset is a row in the table, not a crash of the table
            if row["status"] == "present":
                row.update(status="broken", detail=f"{type(exc).__name__}: {exc}")
        row["seconds"] = round(time.perf_counter() - started, 2)
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, object]]) -> str:
    """Render rows of dicts as a Markdown table."""
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


"""Fixtures shared by the unit tests."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Mapping

import pytest


def require(module: str, environ: Mapping[str, str] | None = None) -> ModuleType:
    """Import an optional test dependency: skip the calling test without it, but fail under CI.

    CI installs every test dependency (``pip install -e ".[test]"``), so there a missing one is a broken
    set-up, not a reason to skip: with the ``CI`` environment variable set (to anything but ``""``,
    ``0`` or ``false``) the test fails instead of passing silently as "skipped".
    """
    environ = os.environ if environ is None else environ
    try:
        return importlib.import_module(module)
    except ImportError as error:
        message = f"test dependency {module!r} is not installed ({error}); pip install -e '.[test]'"
        if environ.get("CI", "").strip().lower() not in ("", "0", "false"):
            pytest.fail(f"{message} (CI is set: a missing test dependency is an error)", pytrace=False)
        pytest.skip(message)


@pytest.fixture
def skada() -> ModuleType:
    """The skada package, for tests that compare our methods with its: see :func:`require`."""
    return require("skada")

TINY_NOTEBOOK = '''# %%
import os

# %% tags=["parameters"]
seed: int = 0  # random seed
device: str = "auto"  # device
profile: str = os.environ.get("COURSE_PROFILE", "default")  # profile
metrics_path: str = ""  # metrics file
n: int = 3  # how many numbers to add

# %%
from transfer_utils.core.runtime import check_int, start_lesson

lesson = start_lesson("tiny", seed=seed, device=device, profile=profile, metrics_path=metrics_path)
check_int("n", n, low=1)

# %%
total = sum(range(n)) + seed
lesson.save_metrics({"total": total, "values": list(range(n))})
'''


@pytest.fixture
def tiny_notebook(tmp_path: Path) -> Path:
    """A two-second notebook that follows the course conventions and writes metrics."""
    import jupytext
    import nbformat

    notebook = jupytext.reads(TINY_NOTEBOOK, fmt="py:percent")
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def isolated_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the course's data folder (assets cache, caches, runs) at an empty temporary folder."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("COURSE_ASSETS_DIR", raising=False)
    monkeypatch.delenv("COURSE_RUNS_DIR", raising=False)
    return tmp_path / "data"


def build_tiny_bert(folder: Path) -> Path:
    """Save a randomly initialised 2-layer BERT and a WordPiece tokenizer as a Hugging Face folder."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "is", "good", "bad", "a", "movie", "."]
    BertTokenizer(vocab={w: i for i, w in enumerate(words)}).save_pretrained(folder)
    config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    return folder

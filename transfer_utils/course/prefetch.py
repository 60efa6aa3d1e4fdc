"""Download the online assets ahead of a class (where a network exists) and record their checksums.

Everything lands in the local asset cache (``data/assets``), which every loader checks first, so a
classroom machine can be prepared once and then used offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from transfer_utils.data.assets import FASHION_MNIST_FILES
from transfer_utils.models.pretrained import hub_cache_folder
from transfer_utils.core.paths import assets_dir
from transfer_utils.core.storage import atomic_write_json, sha256_file

FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEFAULT_ONLINE = ("bert-base-uncased", "distilbert-base-uncased", "resnet18", "fashion_mnist")
HUB_FILES = ["*.json", "*.txt", "*.safetensors", "*.model"]  # weights once, no TF / Flax copies


def fetch_hub_model(name: str) -> list[Path]:
    """A Hugging Face model's config, tokenizer and safetensors weights into ``data/assets/hf``."""
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(name, local_dir=hub_cache_folder(name), allow_patterns=HUB_FILES))
    return sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts)


def fetch_resnet18() -> list[Path]:
    """torchvision's ImageNet ResNet-18 weights, hash-checked by torch's downloader."""
    import torch
    from torchvision.models import ResNet18_Weights

    url = ResNet18_Weights.IMAGENET1K_V1.url
    target = assets_dir() / "torchvision" / os.path.basename(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(target), hash_prefix=target.stem.split("-")[-1])
    return [target]


def fetch_fashion_mnist() -> list[Path]:
    """The four Fashion-MNIST IDX files from the dataset's official mirror."""
    import torch

    folder = assets_dir() / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for name in FASHION_MNIST_FILES:
        torch.hub.download_url_to_file(FASHION_MNIST_URL + name, str(folder / name))
    return [folder / name for name in FASHION_MNIST_FILES]


def fetcher_for(name: str) -> Callable[[], list[Path]]:
    """The download function for an asset name (any other name is taken as a hub model id)."""
    special = {"resnet18": fetch_resnet18, "fashion_mnist": fetch_fashion_mnist}
    return special.get(name, lambda: fetch_hub_model(name))


def checksums_file() -> Path:
    """Where the recorded SHA-256 sums live."""
    return assets_dir() / "checksums.json"


def record_checksums(paths: list[Path]) -> dict[str, str]:
    """Add the SHA-256 of each file (relative to the asset cache) to ``checksums.json``."""
    sums = json.loads(checksums_file().read_text()) if checksums_file().exists() else {}
    for path in paths:
        sums[str(Path(path).resolve().relative_to(assets_dir().resolve()))] = sha256_file(path)
    atomic_write_json(checksums_file(), dict(sorted(sums.items())))
    return sums


def verify_checksums() -> list[str]:
    """Files in the asset cache whose content no longer matches the recorded sum (or that are gone)."""
    if not checksums_file().exists():
        return []
    sums = json.loads(checksums_file().read_text())
    bad = []
    for relative, digest in sums.items():
        path = assets_dir() / relative
        if not path.exists() or sha256_file(path) != digest:
            bad.append(relative)
    return bad


def prefetch(names: list[str] | tuple[str, ...] = DEFAULT_ONLINE) -> dict[str, str]:
    """Download each asset, record checksums, and return a status line per name (never raises)."""
    report = {}
    for name in names:
        try:
            files = fetcher_for(name)()
            record_checksums(files)
            report[name] = f"ok ({len(files)} files)"
        except Exception as exc:  # no network, unknown model...: say so and carry on with the rest
            report[name] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return report

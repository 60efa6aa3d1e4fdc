"""Download the online assets ahead of a class (where a network exists) and record their checksums.

Everything lands in the local asset cache (``data/assets``), which every loader checks first, so a
classroom machine can be prepared once and then used offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from transfer_utils.data.assets import FASHION_MNIST_FILES
from transfer_utils.models.pretrained import download_hub_model, download_resnet18_weights, hub_revision
from transfer_utils.core.paths import assets_dir
from transfer_utils.core.storage import atomic_write_json, download, sha256_file

# The dataset's own repository, over https (the S3 website mirror named in its README is http only).
FASHION_MNIST_URL = "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"
# Per file: the MD5 the Fashion-MNIST README publishes for the .gz, and the SHA-256 of the decompressed
# IDX bytes (computed from Debian's dataset-fashion-mnist, which recompresses the same files). Both
# are checked before a downloaded file is moved into the asset cache.
FASHION_MNIST_SUMS = {
    "train-images-idx3-ubyte.gz": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                   "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte.gz": ("25c81989df183df01b3e8a0aad5dffbe",
                                   "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte.gz": ("bef4ecab320f06d8554ea6380940ec79",
                                  "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte.gz": ("bb300cfdad3c16e7a12a480ee83cd310",
                                  "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}
DEFAULT_ONLINE = ("bert-base-uncased", "distilbert-base-uncased", "resnet18", "fashion_mnist")


def fetch_hub_model(name: str) -> list[Path]:
    """A Hugging Face model's files at its pinned commit (``name`` or ``name@commit``) into ``data/assets/hf``."""
    hub_revision(name)  # fail before any network use when no revision is pinned
    folder = download_hub_model(name)
    return sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts)


def fetch_resnet18() -> list[Path]:
    """torchvision's ImageNet ResNet-18 weights over https, hash-checked before they are kept."""
    return [download_resnet18_weights()]


def fetch_fashion_mnist(base_url: str = FASHION_MNIST_URL) -> list[Path]:
    """The four Fashion-MNIST IDX files over https, each verified against its pinned sums before use."""
    folder = assets_dir() / "fashion-mnist"
    for name in FASHION_MNIST_FILES:
        md5, content_sha256 = FASHION_MNIST_SUMS[name]
        download(base_url + name, folder / name, md5=md5, gunzip_sha256=content_sha256)
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

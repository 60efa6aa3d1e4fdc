"""A ResNet pretrained by the course on *source* classes of Fashion-MNIST, cached on disk.

Lessons 04 and 08 transfer this network to the other classes. Pretraining takes a minute on a
laptop CPU, so the weights are cached under ``data/cache/source_resnet``: the file name holds a hash
of the settings and the training images, the file holds the same hash and a hash of the weights,
and a file that is missing, stale or corrupt is simply retrained (and rewritten atomically).

Lessons: 04, 08.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from transfer_utils.data import datasets
from transfer_utils.core.paths import cache_dir
from transfer_utils.core.storage import atomic_torch_save, digest, safe_torch_load
from transfer_utils.training import evaluate, fit
from transfer_utils.models.small_resnet import SmallResNet
from transfer_utils.data.image_tensors import grey_tensor, image_loader

CACHE_VERSION = 2  # bump when the training code changes in a way the settings do not capture
SOURCE_CLASSES = (0, 1, 2, 3, 4)  # T-shirt/top, Trouser, Pullover, Dress, Coat
TARGET_CLASSES = (5, 6, 7, 8, 9)  # Sandal, Shirt, Sneaker, Bag, Ankle boot


@dataclass(frozen=True)
class SourceConfig:
    """Everything that decides the pretrained weights (and so the cache key)."""

    classes: tuple[int, ...] = SOURCE_CLASSES
    n_images: int = 0  # training images of the source classes; 0 means all of them
    epochs: int = 3
    width: int = 16
    layers: tuple[int, ...] = (1, 1, 1, 1)
    batch_size: int = 128
    lr: float = 2e-3  # Adam, with a cosine decay to zero
    augment: bool = False
    seed: int = 0
    n_test: int = 0  # source test images scored after pretraining; 0 means all 5,000


def source_config(profile: str, width: int = 16) -> SourceConfig:
    """The pretraining settings a profile uses (shared by every lesson, so they share the cache)."""
    if profile == "smoke":
        return SourceConfig(n_images=10000, epochs=1, width=width, n_test=1000)  # ~0.88 source accuracy
    return SourceConfig(width=width)  # default and full: all 27,000 source training images, 3 epochs


@dataclass
class SourceModel:
    """A pretrained source network and where it came from."""

    model: SmallResNet
    config: SourceConfig
    source_accuracy: float  # on the source classes' test images
    train_seconds: float  # time the pretraining took (when it ran, or when the cached file was made)
    cached: bool  # True when loaded from the cache
    path: Path


def class_subset(part: datasets.Part, classes: tuple[int, ...]) -> datasets.Part:
    """The rows of ``part`` whose label is in ``classes``, relabelled 0..len(classes)-1."""
    keep = np.flatnonzero(np.isin(part.y, classes))
    subset = part.take(keep)
    lookup = {c: i for i, c in enumerate(classes)}
    return datasets.Part(subset.x, np.array([lookup[int(c)] for c in subset.y], dtype=np.int64))


def source_training_data(config: SourceConfig) -> datasets.Part:
    """The source-class training images the config asks for (a fixed, seeded subset when ``n_images``)."""
    part = class_subset(datasets.load_fashion_mnist().train, config.classes)
    if config.n_images and config.n_images < len(part):
        part = datasets.sample_n(part, config.n_images, seed=config.seed)
    return part


def cache_key(config: SourceConfig, data: datasets.Part) -> str:
    """A digest of the settings, the training images and labels, and the cache version."""
    return digest("source_model", CACHE_VERSION, config, np.asarray(data.x), np.asarray(data.y), length=20)


def state_hash(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's names, shapes and values (detects a damaged checkpoint)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def checkpoint_path(config: SourceConfig, key: str) -> Path:
    """Where the pretrained weights for ``config`` with cache key ``key`` live."""
    return cache_dir() / "source_resnet" / f"resnet_w{config.width}_{key}.pt"


def build_model(config: SourceConfig) -> SmallResNet:
    """A fresh network for ``config``, initialised from ``config.seed`` (the caller's random state is kept)."""
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        return SmallResNet(num_classes=len(config.classes), width=config.width, layers=config.layers)


def load_cached(path: Path, key: str, config: SourceConfig) -> tuple[SmallResNet, dict] | None:
    """The cached model when the file exists and is intact and current; otherwise None (with a note)."""
    if not path.exists():
        return None
    try:
        payload = safe_torch_load(path)
        if payload.get("key") != key:
            raise ValueError("it was made from other settings or data")
        if state_hash(payload["state_dict"]) != payload.get("state_sha256"):
            raise ValueError("its weights do not match their recorded hash")
        model = build_model(config)
        model.load_state_dict(payload["state_dict"])
    except Exception as err:  # noqa: BLE001 - any unreadable or inconsistent file is rebuilt
        print(f"cached source model {path.name} is unusable ({type(err).__name__}: {str(err)[:120]}); retraining")
        return None
    return model, payload


def pretrain(config: SourceConfig, data: datasets.Part, device: torch.device | str = "cpu",
             progress: bool = True) -> SmallResNet:
    """Train a fresh network on the source classes: Adam, cosine-decayed learning rate, cross-entropy."""
    model = build_model(config).to(device)
    loader = image_loader(grey_tensor(data.x), data.y, config.batch_size, augment=config.augment,
                          shuffle=True, seed=config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * len(loader))
    fit(model, loader, optimizer, epochs=config.epochs, scheduler=schedule, restore_best=False,
        device=torch.device(device), progress=progress)
    return model.eval()


def source_test_accuracy(model: nn.Module, classes: tuple[int, ...] = SOURCE_CLASSES,
                         n_test: int = 0) -> float:
    """Accuracy on the source classes' test images (all of them, or a fixed stratified ``n_test``)."""
    test = class_subset(datasets.load_fashion_mnist().test, classes)
    if n_test and n_test < len(test):
        test = datasets.sample_n(test, n_test, seed=0)
    device = next(model.parameters()).device
    return evaluate(model, image_loader(grey_tensor(test.x), test.y, 500), device=device)["accuracy"]


def pretrained_source_model(config: SourceConfig, device: torch.device | str = "cpu",
                            progress: bool = True) -> SourceModel:
    """The source network for ``config``: from the cache when it is there and intact, else trained now."""
    data = source_training_data(config)
    key = cache_key(config, data)
    path = checkpoint_path(config, key)
    cached = load_cached(path, key, config)
    if cached is not None:
        model, payload = cached
        print(f"loaded the pretrained source model from the cache ({path.name})")
        return SourceModel(model.to(device).eval(), config, payload["source_accuracy"],
                           payload["train_seconds"], True, path)
    with torch.random.fork_rng():  # pretraining leaves the caller's random state untouched
        started = time.perf_counter()
        model = pretrain(config, data, device, progress)
        seconds = time.perf_counter() - started
    accuracy = source_test_accuracy(model, config.classes, config.n_test)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save(path, {"key": key, "config": dataclasses.asdict(config), "state_dict": state,
                             "state_sha256": state_hash(state), "source_accuracy": accuracy,
                             "train_seconds": seconds, "torch": str(torch.__version__)})
    print(f"pretrained in {seconds:.0f} s; source test accuracy {accuracy:.3f}; cached as {path.name}")
    return SourceModel(model, config, accuracy, seconds, False, path)

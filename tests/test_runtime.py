"""Runtime: parameter checks, seeding, device choice, profiles and the Lesson object."""

import numpy as np
import pytest
import torch

from transfer_utils.core import runtime
from transfer_utils.core.runtime import ParameterError, check_choice, check_float, check_int, check_int_list


def test_check_choice_names_parameter_and_allowed_values():
    with pytest.raises(ParameterError) as err:
        check_choice("profile", "fast", runtime.PROFILES)
    message = str(err.value)
    assert "'profile'" in message and "'fast'" in message
    assert all(repr(p) in message for p in runtime.PROFILES)
    assert "\n" not in message  # one line


def test_parameter_error_renders_as_one_line_in_ipython():
    lines = ParameterError("parameter 'x' = 1 is out of range")._render_traceback_()
    assert lines == ["ParameterError: parameter 'x' = 1 is out of range"]


@pytest.mark.parametrize("value", [1.5, "3", True, None])
def test_check_int_rejects_non_integers(value):
    with pytest.raises(ParameterError, match="'n_labels'.*integer"):
        check_int("n_labels", value)


def test_check_int_and_float_ranges():
    assert check_int("k", np.int64(4), low=1, high=4) == 4
    with pytest.raises(ParameterError, match="out of range; allowed: 1 to 4"):
        check_int("k", 5, low=1, high=4)
    assert check_float("lr", 1e-3, low=0) == 1e-3
    with pytest.raises(ParameterError, match="'lr'"):
        check_float("lr", -1.0, low=0)
    assert check_int_list("grid", [16, 64], low=1) == [16, 64]
    with pytest.raises(ParameterError, match="non-empty list"):
        check_int_list("grid", 16)


def test_seed_everything_repeats_numpy_and_torch():
    runtime.seed_everything(3)
    first = (np.random.rand(3), torch.rand(3))
    runtime.seed_everything(3)
    second = (np.random.rand(3), torch.rand(3))
    assert np.array_equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_pick_device():
    assert runtime.pick_device("cpu").type == "cpu"
    auto = runtime.pick_device("auto")
    assert auto.type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no CUDA GPU"):
            runtime.pick_device("cuda")
    with pytest.raises(ParameterError, match="'device'"):
        runtime.pick_device("tpu")


def test_start_lesson_sets_threads_seed_and_metrics_path(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_RUNS_DIR", str(tmp_path))
    lesson = runtime.start_lesson("xx_demo", seed=5, device="cpu", profile="smoke")
    assert torch.get_num_threads() == lesson.threads <= 2
    assert lesson.metrics_path == tmp_path / "smoke" / "xx_demo.metrics.json"
    assert lesson.pick(smoke=1, default=2) == 1
    with pytest.raises(ParameterError, match="'seed'"):
        runtime.start_lesson("xx_demo", seed=-1)
    with pytest.raises(ParameterError, match="'profile'"):
        runtime.start_lesson("xx_demo", seed=0, profile="quick")


def test_full_profile_falls_back_to_default_settings(tmp_path):
    lesson = runtime.start_lesson("xx", seed=0, device="cpu", profile="full", metrics_path=tmp_path / "m.json")
    assert lesson.pick(smoke=1, default=2) == 2
    assert lesson.pick(smoke=1, default=2, full=3) == 3
    with pytest.raises(KeyError, match="no setting for profile"):
        lesson.pick(smoke=1)


def test_default_profile_reads_environment(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert runtime.default_profile() == "smoke"
    monkeypatch.delenv("COURSE_PROFILE")
    assert runtime.default_profile() == "default"


def test_lesson_saves_metrics_in_the_contract(tmp_path):
    from transfer_utils.core.results import load_metrics

    lesson = runtime.start_lesson("xx", seed=2, device="cpu", profile="smoke", metrics_path=tmp_path / "m.json")
    lesson.save_metrics({"accuracy": np.float32(0.5), "curve": [{"n": 1, "acc": 0.5}]})
    record = load_metrics(tmp_path / "m.json")
    assert record["notebook"] == "xx" and record["seed"] == 2 and record["profile"] == "smoke"
    assert record["metrics"]["accuracy"] == 0.5 and record["seconds"] >= 0

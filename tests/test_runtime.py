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


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), np.float32("nan"), 10**400])
def test_check_float_rejects_nan_and_infinity_in_one_line(value):
    with pytest.raises(ParameterError, match=r"^parameter 'lr' = .* must be a finite number$"):
        check_float("lr", value, low=0, high=1)


def test_check_float_message_for_nan_is_the_documented_one():
    with pytest.raises(ParameterError) as err:
        check_float("lr", float("nan"))
    assert str(err.value) == "parameter 'lr' = nan must be a finite number"
    assert err.value._render_traceback_() == ["ParameterError: parameter 'lr' = nan must be a finite number"]


def test_check_int_has_default_bounds_and_start_lesson_limits_the_seed(tmp_path):
    with pytest.raises(ParameterError, match="'n'.*out of range"):
        check_int("n", 2**64)
    assert check_int("n", 2**63 - 1) == 2**63 - 1
    for seed in (2**32, -1):
        with pytest.raises(ParameterError, match=r"^parameter 'seed' = .* out of range; allowed: 0 to 4294967295$"):
            runtime.start_lesson("xx", seed=seed, device="cpu", metrics_path=tmp_path / "m.json")
    assert runtime.start_lesson("xx", seed=2**32 - 1, device="cpu", metrics_path=tmp_path / "m.json").seed == 2**32 - 1


def test_check_seed_leaves_room_for_derived_seeds():
    assert runtime.check_seed(2**32 - 3, 3) == 2**32 - 3
    with pytest.raises(ParameterError, match="seed \\+ 2"):
        runtime.check_seed(2**32 - 2, 3)


def test_start_lesson_checks_device_profile_and_metrics_path(tmp_path):
    with pytest.raises(ParameterError, match="'device' = 'tpu'.*'auto', 'cpu', 'cuda', 'mps'"):
        runtime.start_lesson("xx", seed=0, device="tpu")
    with pytest.raises(ParameterError, match="'profile' = 1 .*'smoke', 'default', 'full'"):
        runtime.start_lesson("xx", seed=0, device="cpu", profile=1)
    with pytest.raises(ParameterError, match="'device' = True"):
        runtime.start_lesson("xx", seed=0, device=True)
    with pytest.raises(ParameterError, match="'metrics_path'.*folder"):
        runtime.start_lesson("xx", seed=0, device="cpu", metrics_path=str(tmp_path))
    with pytest.raises(ParameterError, match="'metrics_path'.*string"):
        runtime.start_lesson("xx", seed=0, device="cpu", metrics_path=3)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParameterError, match="'metrics_path'.*is a file"):
        runtime.check_metrics_path(str(tmp_path / "file" / "m.json"))


def test_check_str():
    assert runtime.check_str("backbone", "resnet18", ("resnet18",)) == "resnet18"
    assert runtime.check_str("note", "", nonempty=False) == ""
    for value, problem in [("", "non-empty"), ("  ", "non-empty"), (3, "string"), ("vgg", "use one of")]:
        with pytest.raises(ParameterError, match=f"'backbone'.*{problem}"):
            runtime.check_str("backbone", value, ("resnet18",))


def test_check_model_name(tmp_path):
    for good in ("minilm", "all-MiniLM-L6-v2", "bert-base-uncased", "google-bert/bert-base-uncased"):
        assert runtime.check_model_name("model_name", good) == good
    (tmp_path / "config.json").write_text("{}")
    assert runtime.check_model_name("model_name", str(tmp_path)) == str(tmp_path)
    for bad, problem in [("", "must not be empty"), ("  ", "must not be empty"), (None, "must be a string"),
                         ("./no/such", "no such folder"), ("/no/such/model", "no such folder"),
                         ("a/b/c", "no such folder"), ("bert base", "not a valid model name"),
                         ("org//x", "no such folder"), ("-x", "not a valid"), ("a--b", "not a valid")]:
        with pytest.raises(ParameterError, match=f"^parameter 'model_name' = .*{problem}.*'minilm'") as err:
            runtime.check_model_name("model_name", bad)
        assert "\n" not in str(err.value)
    with pytest.raises(ParameterError, match="without a config.json"):
        runtime.check_model_name("model_name", str(tmp_path.parent))


def test_check_text_model_looks_only_locally(monkeypatch):
    from transfer_utils.models.pretrained import check_text_model

    monkeypatch.delenv("COURSE_ALLOW_DOWNLOAD", raising=False)
    assert check_text_model("model_name", "minilm") == "minilm"
    with pytest.raises(ParameterError, match="'model_name' = 'no-such-org/no-such-model' is not on this machine"):
        check_text_model("model_name", "no-such-org/no-such-model")


def test_check_lists_reject_nan_repeats_and_bad_items():
    assert check_int_list("sizes", [64, 256], low=2, high=8965, unique=True) == [64, 256]
    with pytest.raises(ParameterError, match="'sizes'.*repeat"):
        check_int_list("sizes", [64, 64], unique=True)
    with pytest.raises(ParameterError, match=r"'sizes\[1\]'.*out of range"):
        check_int_list("sizes", [64, 10**6], high=8965)
    assert runtime.check_float_list("rates", [0.1, 1]) == [0.1, 1.0]
    with pytest.raises(ParameterError, match=r"'rates\[1\]' = nan must be a finite number"):
        runtime.check_float_list("rates", [0.1, float("nan")])
    with pytest.raises(ParameterError, match="'rates'.*repeat"):
        runtime.check_float_list("rates", [0.1, 0.1], unique=True)
    with pytest.raises(ParameterError, match="'rates'.*non-empty list"):
        runtime.check_float_list("rates", [])


def test_check_choice_does_not_confuse_types():
    with pytest.raises(ParameterError):
        check_choice("flag", 1, (True, False))
    with pytest.raises(ParameterError):
        check_choice("flag", [1], ("a",))  # an unhashable value is simply not a choice
    assert check_choice("n", np.int64(2), (1, 2)) == 2


def test_cpu_label_names_the_model_and_the_widest_vector_instructions(tmp_path):
    (tmp_path / "zen4").write_text("processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    (tmp_path / "zen2").write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx avx2 fma\n")
    (tmp_path / "old").write_text("model name\t: Some CPU\nflags\t\t: fpu sse4_2\n")
    assert runtime.cpu_label(tmp_path / "zen4") == "AMD EPYC 9R14 (avx512_bf16)"
    assert runtime.cpu_label(tmp_path / "zen2") == "AMD EPYC (avx2)"
    assert runtime.cpu_label(tmp_path / "old") == "Some CPU (no avx2)"
    assert runtime.cpu_label(tmp_path / "missing")  # falls back to what the platform module knows

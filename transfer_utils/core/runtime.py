"""Runtime set-up shared by every lesson: seeds, device, threads, profiles and parameter checks.

Lessons: 00, 01, 02, 03, 04, 05, 06, 07, 08, 09, 10, 11, 12.
"""

from __future__ import annotations

import math
import os
import platform
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from transfer_utils.core.paths import REPO_ROOT, runs_dir

PROFILES = ("smoke", "default", "full")
DEVICES = ("auto", "cpu", "cuda", "mps")
PROFILE_ENV = "COURSE_PROFILE"  # lets tools that cannot inject parameters (nbval) pick a profile


class ParameterError(ValueError):
    """A notebook parameter has a value the lesson cannot use."""

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback: the learner sees one line.
        return [f"ParameterError: {self}"]


INT_LIMIT = 2**63 - 1  # a check_int without bounds still rejects integers no array or tensor can hold
MAX_SEED = 2**32 - 1  # numpy's legacy seeding (np.random.seed) takes 0 .. 2**32 - 1
OFFLINE_MODEL_NAMES = ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
# a Hugging Face hub id: "name" or "org/name", letters, digits, '-', '_', '.' (no '--' or '..'), at most 96 characters
_HUB_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:/[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)?$")


def _fail(name: str, value: Any, problem: str) -> ParameterError:
    """The one-line error every check raises: ``parameter 'lr' = nan must be a finite number``."""
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ParameterError(f"parameter '{name}' = {shown} {problem}".replace("\n", " "))


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Stop with a one-line message unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    try:
        # a bool is no stand-in for 0/1, nor a number for a string: compare like with like
        ok = any(value == c and isinstance(value, bool) == isinstance(c, bool)
                 and isinstance(value, str) == isinstance(c, str) for c in choices)
    except Exception:  # an exotic value whose comparison fails is not one of the choices
        ok = False
    if not ok:
        allowed = ", ".join(repr(c) for c in choices)
        raise _fail(name, value, f"is not allowed; use one of: {allowed}")
    return value


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """Stop with a one-line message unless ``value`` is an int within [low, high].

    Without bounds the value must still fit a 64-bit integer (what numpy and torch can hold).
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _fail(name, value, "must be an integer")
    low = -INT_LIMIT if low is None else low
    high = INT_LIMIT if high is None else high
    _check_range(name, int(value), low, high)
    return int(value)


def check_float(name: str, value: Any, low: float | None = None, high: float | None = None) -> float:
    """Stop with a one-line message unless ``value`` is a finite number within [low, high] (never NaN or ±inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _fail(name, value, "must be a number")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        number = math.inf
    if not math.isfinite(number):
        raise _fail(name, value, "must be a finite number")
    _check_range(name, number, low, high)
    return number


def check_str(name: str, value: Any, choices: Iterable[str] | None = None, nonempty: bool = True) -> str:
    """Stop with a one-line message unless ``value`` is a string (non-blank when ``nonempty``; one of ``choices``)."""
    if not isinstance(value, str):
        raise _fail(name, value, "must be a string")
    if nonempty and not value.strip():
        raise _fail(name, value, "must be a non-empty string")
    if choices is not None:
        check_choice(name, value, choices)
    return value


def check_model_name(name: str, value: Any) -> str:
    """Stop with a one-line message unless ``value`` names a text model the course can load.

    Accepted: the offline names (``"minilm"``, ``"all-MiniLM-L6-v2"``, ...), a hub id such as
    ``"bert-base-uncased"`` or ``"org/name"``, or the path of an existing model folder. Rejected: empty or
    blank strings, strings with spaces or odd characters, and paths (``/…``, ``./…``, ``~…``, ``a/b/c``)
    that do not exist. Whether the model is on this machine is ``models.pretrained.check_text_model``'s job.
    """
    accepted = ("accepted: " + ", ".join(repr(n) for n in OFFLINE_MODEL_NAMES)
                + ", a hub id such as 'bert-base-uncased', or an existing model folder")
    if not isinstance(value, str):
        raise _fail(name, value, f"must be a string; {accepted}")
    if not value.strip():
        raise _fail(name, value, f"must not be empty; {accepted}")
    if value in OFFLINE_MODEL_NAMES:
        return value
    looks_like_path = (value.startswith(("/", ".", "~", "\\")) or "\\" in value or value.count("/") > 1
                       or os.path.isabs(value))
    if looks_like_path or Path(value).is_dir():
        folder = Path(value).expanduser()
        if not folder.is_dir():
            raise _fail(name, value, f"looks like a path but no such folder exists; {accepted}")
        if not (folder / "config.json").is_file():
            raise _fail(name, value, f"is a folder without a config.json, not a model; {accepted}")
        return str(folder)
    if len(value) > 96 or not _HUB_ID.match(value) or "--" in value or ".." in value:
        raise _fail(name, value, f"is not a valid model name; {accepted}")
    return value


def _check_list(name: str, value: Any, check: Any, example: str, unique: bool, **bounds: Any) -> list:
    """A non-empty list whose items each pass ``check`` (and, with ``unique``, never repeat)."""
    if not isinstance(value, (list, tuple)) or not value:
        raise _fail(name, value, f"must be a non-empty list, e.g. {example}")
    values = [check(f"{name}[{i}]", v, **bounds) for i, v in enumerate(value)]
    if unique and len(set(values)) != len(values):
        raise _fail(name, value, "must not repeat a value")
    return values


def check_int_list(name: str, value: Any, low: int | None = None, high: int | None = None, *,
                   unique: bool = False) -> list[int]:
    """Stop with a one-line message unless ``value`` is a non-empty list of ints in [low, high].

    ``unique=True`` also rejects repeated values (where a repeat would mean nothing, e.g. grid sizes).
    """
    return _check_list(name, value, check_int, "[16, 64] (integers)", unique, low=low, high=high)


def check_float_list(name: str, value: Any, low: float | None = None, high: float | None = None, *,
                     unique: bool = False) -> list[float]:
    """Stop with a one-line message unless ``value`` is a non-empty list of finite numbers in [low, high]."""
    return _check_list(name, value, check_float, "[0.1, 1.0] (numbers)", unique, low=low, high=high)


def check_seed(seed: Any, count: int = 1, name: str = "seed") -> int:
    """Stop unless ``seed`` .. ``seed + count - 1`` (the seeds a lesson derives from it) are all valid seeds."""
    high = MAX_SEED - (count - 1)
    value = check_int(name, seed)
    if not 0 <= value <= high:
        extra = f" (the lesson also uses seeds up to {name} + {count - 1})" if count > 1 else ""
        raise _fail(name, seed, f"is out of range; allowed: 0 to {high}{extra}")
    return value


def check_metrics_path(value: Any, name: str = "metrics_path") -> str:
    """Stop unless ``value`` is "" (the default place) or a file path the metrics JSON can be written to."""
    if not isinstance(value, (str, os.PathLike)):
        raise _fail(name, value, "must be a string: a file path, or \"\" for the default place")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise _fail(name, value, "must be a string: a file path, or \"\" for the default place")
    if text == "":
        return text
    if not text.strip() or text != text.strip():
        raise _fail(name, value, "must be a file path without surrounding blanks, or \"\" for the default place")
    path = Path(text).expanduser()
    if path.is_dir():
        raise _fail(name, value, "is a folder; give a file path such as runs/NN_name.metrics.json")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise _fail(name, value, f"cannot be created: {parent} is a file, not a folder")
            break
    return text


def _check_range(name: str, value: Any, low: Any, high: Any) -> None:
    """Raise ParameterError when value lies outside [low, high]."""
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise _fail(name, value, f"is out of range; allowed: {lo} to {hi}")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and all GPUs) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def pick_device(device: str = "auto") -> torch.device:
    """Turn "auto" into the best available device (cuda, then mps, then cpu)."""
    check_choice("device", device, DEVICES)
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ParameterError("parameter 'device' = 'cuda' but no CUDA GPU is visible; use 'auto' or 'cpu'")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ParameterError("parameter 'device' = 'mps' but Apple's MPS backend is not available; use 'auto' or 'cpu'")
    return torch.device(device)


def set_threads(n: int | None = None) -> int:
    """Fix torch's CPU thread count (default: at most 2, the course's reference machine)."""
    n = n or min(2, os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


VECTOR_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")  # widest first: they set CPU training speed


def cpu_label(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The processor's model name and widest vector instructions, e.g. "AMD EPYC (avx2)", for timing tables."""
    path = Path(cpuinfo)
    if not path.exists():
        return platform.processor() or platform.machine()
    text = path.read_text()
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                 platform.machine())
    flags = set(text.split())
    widest = next((flag for flag in VECTOR_FLAGS if flag in flags), "no avx2")
    return f"{model} ({widest})"


def default_profile() -> str:
    """The profile named by $COURSE_PROFILE, else "default"."""
    return os.environ.get(PROFILE_ENV, "default")


def _short(path: Path) -> str:
    """A path relative to the repository when it lies inside it (keeps notebooks free of home paths)."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


@dataclass
class Lesson:
    """What a running notebook knows about itself: name, profile, seed, device, where metrics go."""

    name: str
    profile: str
    seed: int
    device: torch.device
    metrics_path: Path
    threads: int
    started: float = field(default_factory=time.perf_counter)

    def pick(self, **per_profile: Any) -> Any:
        """Return the value given for this lesson's profile, e.g. ``pick(smoke=200, default=2000)``."""
        if self.profile in per_profile:
            return per_profile[self.profile]
        if self.profile == "full" and "default" in per_profile:
            return per_profile["default"]  # full falls back to default unless it says otherwise
        raise KeyError(f"no setting for profile {self.profile!r}; given: {sorted(per_profile)}")

    def elapsed(self) -> float:
        """Seconds since the lesson started."""
        return time.perf_counter() - self.started

    def save_metrics(self, metrics: dict[str, Any]) -> Path:
        """Write this lesson's metrics JSON (the course-wide contract) and return its path."""
        from transfer_utils.core.results import save_metrics

        path = save_metrics(self.metrics_path, notebook=self.name, profile=self.profile, seed=self.seed,
                            seconds=self.elapsed(), metrics=metrics)
        print(f"metrics written to {_short(path)}")
        return path

    def __repr__(self) -> str:
        return (f"Lesson({self.name!r}, profile={self.profile!r}, seed={self.seed}, "
                f"device={self.device.type!r}, threads={self.threads})")


def start_lesson(name: str, *, seed: int, device: str = "auto", profile: str = "default",
                 metrics_path: str | os.PathLike = "", threads: int | None = None,
                 deterministic: bool = True) -> Lesson:
    """Check the common parameters, seed everything, pick device and threads, and return a Lesson."""
    check_seed(seed)  # 0 .. 2**32 - 1: what numpy accepts
    check_choice("profile", profile, PROFILES)
    check_choice("device", device, DEVICES)
    check_metrics_path(metrics_path)
    torch_device = pick_device(device)
    n_threads = set_threads(threads)
    if deterministic:
        # warn_only: a few CPU kernels have no deterministic variant; we want a warning, not a crash.
        torch.use_deterministic_algorithms(True, warn_only=True)
    seed_everything(seed)
    path = Path(metrics_path) if metrics_path else runs_dir() / profile / f"{name}.metrics.json"
    return Lesson(name, profile, seed, torch_device, path, n_threads)

"""Runtime set-up shared by every lesson: seeds, device, threads, profiles and parameter checks.

Lessons: 00, 01, 02, 03, 04, 05, 06, 07, 08.
"""

from __future__ import annotations

import os
import random
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


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Stop with a one-line message unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ParameterError(f"parameter '{name}' = {value!r} is not allowed; use one of: {allowed}")
    return value


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """Stop with a one-line message unless ``value`` is an int within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"parameter '{name}' = {value!r} must be an integer")
    _check_range(name, value, low, high)
    return int(value)


def check_float(name: str, value: Any, low: float | None = None, high: float | None = None) -> float:
    """Stop with a one-line message unless ``value`` is a number within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"parameter '{name}' = {value!r} must be a number")
    _check_range(name, value, low, high)
    return float(value)


def check_int_list(name: str, value: Any, low: int | None = None) -> list[int]:
    """Stop with a one-line message unless ``value`` is a non-empty list of ints (each >= low)."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ParameterError(f"parameter '{name}' = {value!r} must be a non-empty list of integers, e.g. [16, 64]")
    return [check_int(f"{name}[{i}]", v, low) for i, v in enumerate(value)]


def _check_range(name: str, value: Any, low: Any, high: Any) -> None:
    """Raise ParameterError when value lies outside [low, high]."""
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ParameterError(f"parameter '{name}' = {value!r} is out of range; allowed: {lo} to {hi}")


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
    check_int("seed", seed, 0)
    check_choice("profile", profile, PROFILES)
    torch_device = pick_device(device)
    n_threads = set_threads(threads)
    if deterministic:
        # warn_only: a few CPU kernels have no deterministic variant; we want a warning, not a crash.
        torch.use_deterministic_algorithms(True, warn_only=True)
    seed_everything(seed)
    path = Path(metrics_path) if metrics_path else runs_dir() / profile / f"{name}.metrics.json"
    return Lesson(name, profile, seed, torch_device, path, n_threads)

"""The metrics file every notebook writes, so that tests, sweeps and reports can read its numbers.

Contract: ``{"notebook": str, "profile": str, "seed": int, "seconds": float,
"metrics": {name: number or list}}`` where a list holds numbers, strings or flat dicts (table rows).

Lessons: none directly; the package uses it underneath every lesson.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from transfer_utils.core.storage import atomic_write_json

REQUIRED = {"notebook": str, "profile": str, "seed": int, "seconds": (int, float), "metrics": dict}


def to_plain(value: Any) -> Any:
    """numpy / torch scalars and arrays → plain Python numbers and lists."""
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def _check_value(name: str, value: Any) -> None:
    """Raise ValueError unless ``value`` is a finite number or a list of numbers / strings / flat rows."""
    def scalar_ok(v: Any) -> bool:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return True
        return isinstance(v, (int, float)) and math.isfinite(v)

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"metric {name!r} is {value}; metrics must be finite numbers")
        return
    if isinstance(value, list):
        for item in value:
            ok = all(scalar_ok(v) for v in item.values()) if isinstance(item, dict) else scalar_ok(item)
            if not ok:
                raise ValueError(f"metric {name!r} holds {item!r}; list items must be finite numbers, "
                                 "strings or flat dicts of them")
        return
    raise ValueError(f"metric {name!r} = {value!r}: a metric must be a number or a list")


def validate_record(record: dict[str, Any]) -> dict[str, Any]:
    """Check a metrics record against the contract; return it unchanged or raise ValueError."""
    for key, kind in REQUIRED.items():
        if key not in record:
            raise ValueError(f"metrics record lacks {key!r}; required keys: {', '.join(REQUIRED)}")
        if not isinstance(record[key], kind) or isinstance(record[key], bool):
            raise ValueError(f"metrics record field {key!r} = {record[key]!r} has the wrong type")
    for name, value in record["metrics"].items():
        _check_value(name, value)
    return record


def save_metrics(path: str | os.PathLike, *, notebook: str, profile: str, seed: int, seconds: float,
                 metrics: dict[str, Any]) -> Path:
    """Validate and atomically write a metrics record."""
    record = {"notebook": notebook, "profile": profile, "seed": int(seed), "seconds": round(float(seconds), 2),
              "metrics": to_plain(metrics)}
    return atomic_write_json(path, validate_record(record))


def load_metrics(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a metrics record."""
    return validate_record(json.loads(Path(path).read_text(encoding="utf-8")))


def scalar_metrics(record: dict[str, Any]) -> dict[str, float]:
    """Only the single-number metrics of a record (what fits in one CSV row)."""
    return {k: v for k, v in record["metrics"].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}

"""Every bad lesson parameter stops at the lesson's check cell with one line that names it.

How the cases run, and why. Each lesson's ``parameters`` cell is followed by its check cell
(``start_lesson(...)`` + ``check_*``); a correct check stops a bad value there, before any work. The
table below holds bad values for every parameter of every lesson (NaN, ±inf, huge and negative ints,
empty strings, wrong types, unknown names, per-profile and cross-parameter limits). Running each of them
through papermill would start one kernel per case (2-3 s each, over 50 cases plus the good values), so
the table runs *in-process*: one subprocess for all lessons (a fresh interpreter that imports torch and
transformers once, and keeps ``torch``'s global settings out of the pytest process) builds each lesson from
its ``py:percent`` source with ``authoring.read_source``, and for each case executes, in a fresh namespace,
the code cells before the parameters cell (imports), the parameters cell, the overrides (what papermill
would inject, with ``profile="smoke"``), then the check cell. It records which of those cells raised,
what, and how long it took. A case passes when the *check cell* raised a ``ParameterError`` naming the
parameter in one line, in under 15 s. So that no case passes vacuously, the same harness also runs each
lesson with no override and with a good non-default value of every parameter named in the table, and
those must pass the check cell.

Two papermill runs (``runner.execute`` on a notebook truncated after the check cell, built from the source
into ``tmp_path``) prove that the in-process harness matches what a learner sees: the injected value fails
at the check cell (cell 4: title, imports, parameters, injected parameters, check) within 15 s of cell time,
and the default value runs through.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest

from transfer_utils.core.paths import REPO_ROOT

NAN, INF = float("nan"), float("inf")
BIG = 2**64  # no numpy or torch integer holds it
SMOKE_LIMIT_S = 15.0

LESSONS = {
    "00": "00_setup_and_tour", "01": "01_why_transfer", "02": "02_instance_based", "03": "03_feature_based",
    "04": "04_model_based", "05": "05_domain_adaptation", "06": "06_attention_math",
    "07": "07_bert_fine_tuning", "08": "08_resnet_image_transfer", "10": "10_applications",
}

# (lesson, overrides, the parameter the error must name)
BAD = [
    # common parameters, spread over the lessons
    ("00", {"seed": 2**32}, "seed"),  # numpy seeds must be < 2**32
    ("00", {"seed": 2**32 - 2}, "seed"),  # valid alone, but lesson 00 also uses seed + 1 .. seed + 2
    ("01", {"seed": -1}, "seed"),
    ("02", {"seed": 1.5}, "seed"),
    ("03", {"seed": "3"}, "seed"),
    ("04", {"seed": True}, "seed"),
    ("00", {"profile": "fast"}, "profile"),
    ("05", {"profile": ""}, "profile"),
    ("06", {"profile": 1}, "profile"),
    ("00", {"device": "tpu"}, "device"),
    ("07", {"device": ""}, "device"),
    ("08", {"device": None}, "device"),
    ("02", {"metrics_path": "/"}, "metrics_path"),  # a folder
    ("03", {"metrics_path": "   "}, "metrics_path"),
    ("03", {"n_seeds": -1}, "n_seeds"),
    ("04", {"metrics_path": 7}, "metrics_path"),
    # 00
    ("00", {"n_labels": 1}, "n_labels"),
    ("00", {"n_labels": BIG}, "n_labels"),
    ("00", {"n_labels": 64.0}, "n_labels"),
    ("00", {"model_name": ""}, "model_name"),  # was treated as the current folder
    ("00", {"model_name": "   "}, "model_name"),
    ("00", {"model_name": "./no/such/model"}, "model_name"),
    ("00", {"model_name": "no-such-org/no-such-model"}, "model_name"),  # a hub id that is not on this machine
    # 01
    ("01", {"lr": NAN}, "lr"),
    ("01", {"lr": INF}, "lr"),
    ("01", {"mixed_precision": "fp32"}, "mixed_precision"),
    ("01", {"n_seeds": 0}, "n_seeds"),
    ("01", {"label_sizes": []}, "label_sizes"),
    ("01", {"label_sizes": [16, 64, 64, 256]}, "label_sizes"),
    ("01", {"label_sizes": [16, 64, 256, 100000]}, "label_sizes"),  # more than the 8,965 training snippets
    ("01", {"label_sizes": [16, 64]}, "label_sizes"),  # must include 64 and 256
    ("01", {"label_sizes": "64,256"}, "label_sizes"),
    ("01", {"model_name": "bert base"}, "model_name"),
    # 02
    ("02", {"sharpness": NAN}, "sharpness"),
    ("02", {"sharpness": -INF}, "sharpness"),
    ("02", {"kmm_B": INF}, "kmm_B"),
    ("02", {"n_components": 65}, "n_components"),
    ("02", {"n_labelled_target": 5}, "n_labelled_target"),
    ("02", {"tradaboost_rounds": -3}, "tradaboost_rounds"),
    # 03
    ("03", {"coral_reg": NAN}, "coral_reg"),
    ("03", {"coral_reg": 1.5}, "coral_reg"),
    ("03", {"n_subspace": 301}, "n_subspace"),  # more than the smoke sample's rows
    ("03", {"tca_mu": INF}, "tca_mu"),
    ("03", {"image_size": 0}, "image_size"),
    # 04
    ("04", {"k": 0}, "k"),
    ("04", {"width": BIG}, "width"),
    ("04", {"lr": NAN}, "lr"),
    ("04", {"decay": 0.0}, "decay"),
    ("04", {"strength": -INF}, "strength"),
    # 05
    ("05", {"lr": NAN}, "lr"),  # used to train silently
    ("05", {"n_seeds": -1}, "n_seeds"),
    ("05", {"steps": 503}, "steps"),  # not a multiple of the smoke profile's 5 epochs
    ("05", {"digits_steps": BIG}, "digits_steps"),
    ("05", {"batch_size": 4}, "batch_size"),
    ("05", {"weight_decay": NAN}, "weight_decay"),
    ("05", {"clip_grad_norm": INF}, "clip_grad_norm"),
    ("05", {"coral_weight": "1.0"}, "coral_weight"),
    ("05", {"seed": 2**32 - 1}, "seed"),  # the lesson also uses seed + 1
    # 06
    ("06", {"n_keys": 4096}, "n_keys"),  # the smoke profile's 4,000 pairs leave no row
    ("06", {"n_keys": 401}, "n_keys"),  # per-profile: under 10 rows of keys in smoke
    ("06", {"n_keys": 2}, "n_keys"),  # too few keys for the entropy gap the lesson asserts
    ("06", {"d_k": 0}, "d_k"),
    ("06", {"n_sentences": 100000}, "n_sentences"),
    ("06", {"model_name": "/no/such/folder"}, "model_name"),
    # 07
    ("07", {"lr": -INF}, "lr"),
    ("07", {"epochs": 0}, "epochs"),
    ("07", {"max_steps": BIG}, "max_steps"),
    ("07", {"batch_size": 1024}, "batch_size"),
    ("07", {"warmup_ratio": NAN}, "warmup_ratio"),
    ("07", {"weight_decay": INF}, "weight_decay"),
    ("07", {"max_length": 8}, "max_length"),
    ("07", {"model_name": ""}, "model_name"),
    ("07", {"mixed_precision": "fp16"}, "mixed_precision"),
    # 08
    ("08", {"backbone": "vgg16"}, "backbone"),
    ("08", {"backbone": ""}, "backbone"),
    ("08", {"image_size": 1000}, "image_size"),
    ("08", {"k_a": 0}, "k_a"),
    ("08", {"k": BIG}, "k"),
    ("08", {"width": 2}, "width"),
    ("08", {"seed": 2**32}, "seed"),
    ("10", {"model_name": ""}, "model_name"),
    ("10", {"n_seeds": 0}, "n_seeds"),
    ("10", {"seed": 2**32 - 2}, "seed"),
    ("10", {"shots": 8}, "shots"),
    ("10", {"unknown_intent": "weather"}, "unknown_intent"),
    ("10", {"target_accuracy": 1.5}, "target_accuracy"),
    ("10", {"tweet_labels": 10}, "tweet_labels"),
    ("10", {"window": -1}, "window"),
    ("10", {"n_windows": 5}, "n_windows"),
    ("10", {"k": 0}, "k"),
]

# good non-default values: each must pass the check cell, so the bad cases cannot pass vacuously
GOOD = {
    "00": [{"seed": 7}, {"n_labels": 128}, {"model_name": "all-MiniLM-L6-v2"}, {"device": "cpu"},
           {"metrics_path": "m.json"}, {"seed": 2**32 - 3}],
    "01": [{"lr": 3e-4}, {"n_seeds": 2}, {"label_sizes": [64, 256]}, {"model_name": "minilm"}],
    "02": [{"sharpness": 2.0}, {"kmm_B": 10.0}, {"n_components": 8}, {"n_labelled_target": 40},
           {"tradaboost_rounds": 4}, {"seed": 3}],
    "03": [{"coral_reg": 0.0}, {"n_subspace": 300}, {"tca_mu": 1.0}, {"image_size": 32}, {"seed": 1},
           {"n_seeds": 4}, {"seed": 2**32 - 3}],
    "04": [{"k": 5}, {"width": 8}, {"lr": 0.01}, {"decay": 1.0}, {"strength": 0.0}],
    "05": [{"lr": 0.01}, {"n_seeds": 1}, {"steps": 505}, {"digits_steps": 100}, {"batch_size": 64},
           {"weight_decay": 0.0}, {"clip_grad_norm": 1.0}, {"coral_weight": 0.5}, {"seed": 2**32 - 4}],
    "06": [{"n_keys": 400}, {"n_keys": 8}, {"d_k": 32}, {"n_sentences": 4}, {"model_name": "minilm"}],
    "07": [{"lr": 2e-5}, {"epochs": 1}, {"max_steps": 10}, {"batch_size": 8}, {"warmup_ratio": 0.0},
           {"weight_decay": 0.0}, {"max_length": 64}],
    "08": [{"backbone": "efficientnet_lite0"}, {"image_size": 32}, {"k_a": 5}, {"k": 3}, {"width": 8},
           {"seed": 2**32 - 3}],
    "10": [{"shots": 3}, {"unknown_intent": "coding"}, {"window": 120}, {"n_windows": 30}, {"k": 5}],
}

# Runs in a fresh interpreter: argv[1] is a JSON list of [source path, [overrides, ...]] per lesson;
# prints one JSON line with, per lesson, one result per case.
WORKER = r'''
import json, sys, time, warnings
warnings.filterwarnings("ignore")
from transfer_utils.course.authoring import read_source
from transfer_utils.core.runtime import ParameterError

def run(source, cases):
  nb = read_source(source)
  code = [c for c in nb.cells if c.cell_type == "code"]
  p = next(i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", []))
  imports, parameters, check = code[:p], code[p], code[p + 1]
  results = []
  for overrides in cases:
    overrides = {k: (float(v[1]) if isinstance(v, list) and v[:1] == ["__float__"] else v)
                 for k, v in overrides.items()}
    ns = {"__name__": "__lesson__"}
    started, where, error = time.perf_counter(), None, None
    for label, cells in (("imports", imports), ("parameters", [parameters]), ("check", [check])):
        try:
            for cell in cells:
                exec(compile(cell.source, f"<{label}>", "exec"), ns)
            if label == "parameters":
                ns.update({"profile": "smoke", **overrides})
        except BaseException as exc:
            where = label
            lines = exc._render_traceback_() if isinstance(exc, ParameterError) else [repr(exc)]
            error = {"type": type(exc).__name__, "lines": lines, "parameter_error": isinstance(exc, ParameterError)}
            break
    results.append({"where": where, "error": error, "seconds": time.perf_counter() - started})
  return results

print("RESULTS " + json.dumps([run(source, cases) for source, cases in json.loads(sys.argv[1])]))
'''


def _encode(overrides: dict) -> dict:
    """JSON has no NaN/inf literals that survive every reader: pass them as ["__float__", "nan"]."""
    return {k: (["__float__", repr(v)] if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in overrides.items()}


def _source(lesson: str) -> Path:
    return REPO_ROOT / "notebooks" / "src" / f"{LESSONS[lesson]}.py"


def _cases(lesson: str) -> tuple[list[tuple[dict, str]], list[dict]]:
    """The lesson's bad (overrides, parameter) cases, and its good overrides (defaults first)."""
    return [(o, name) for les, o, name in BAD if les == lesson], [{}] + GOOD[lesson]


@pytest.fixture(scope="module")
def results() -> dict[str, list[dict]]:
    """Every lesson's cases, run in one subprocess (one import of torch and transformers, not nine)."""
    jobs = []
    for lesson in sorted(LESSONS):
        bad, good = _cases(lesson)
        jobs.append([str(_source(lesson)), [_encode(c) for c in [o for o, _ in bad] + good]])
    child = subprocess.run([sys.executable, "-c", WORKER, json.dumps(jobs)], capture_output=True, text=True,
                           cwd=str(REPO_ROOT), timeout=600, env={**os.environ, "COURSE_PROFILE": "smoke"})
    line = next((ln for ln in child.stdout.splitlines() if ln.startswith("RESULTS ")), None)
    assert line is not None, f"the worker failed:\n{child.stderr[-3000:]}"
    return dict(zip(sorted(LESSONS), json.loads(line[len("RESULTS "):])))


def test_table_covers_every_lesson_and_parameter():
    """At least 40 bad values, and every parameter of every parameters cell has at least one."""
    from transfer_utils.course.authoring import read_source

    assert len(BAD) >= 40
    covered = defaultdict(set)
    for lesson, _, name in BAD:
        covered[lesson].add(name)
    for lesson in LESSONS:
        nb = read_source(_source(lesson))
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        declared = {line.split(":")[0].strip() for line in cell.source.splitlines()
                    if line and not line.startswith("#") and ":" in line.split("=")[0]}
        common = {"seed", "device", "profile", "metrics_path"}
        missing = declared - covered[lesson] - common
        assert not missing, f"{lesson}: no bad value in the table for {sorted(missing)}"
    assert {"seed", "device", "profile", "metrics_path"} <= set().union(*covered.values())


@pytest.mark.parametrize("lesson", sorted(LESSONS))
def test_bad_values_stop_at_the_check_cell(results, lesson):
    """Every bad value of this lesson stops at its check cell with a one-line ParameterError naming it."""
    bad, good = _cases(lesson)
    results = results[lesson]
    assert len(results) == len(bad) + len(good)
    problems = []
    for (overrides, name), result in zip(bad, results[:len(bad)]):
        error = result["error"]
        if result["where"] != "check" or not error or not error["parameter_error"]:
            problems.append(f"{overrides}: stopped in {result['where']} with {error}")
            continue
        (line,) = error["lines"]  # one line
        if f"parameter '{name}'" not in line and f"parameter '{name}[" not in line:
            problems.append(f"{overrides}: the message does not name {name!r}: {line}")
        if result["seconds"] >= SMOKE_LIMIT_S:
            problems.append(f"{overrides}: took {result['seconds']:.1f} s")
    for overrides, result in zip(good, results[len(bad):]):
        if result["error"] is not None:
            problems.append(f"good value {overrides} failed in {result['where']}: {result['error']}")
    assert not problems, "\n".join(problems)


def _truncated_notebook(lesson: str, folder: Path) -> Path:
    """The lesson built from its source, cut after the check cell (what a correct check never passes)."""
    from transfer_utils.course.authoring import read_source

    nb = read_source(_source(lesson))
    p = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells = nb.cells[:p + 2]
    path = folder / f"{LESSONS[lesson]}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("lesson, params, name", [("05", {"lr": NAN}, "lr")])  # one: each run starts a kernel
def test_papermill_run_stops_at_the_check_cell(tmp_path, lesson, params, name):
    """Through papermill (as the CLI and CI run lessons): fails at cell 4, naming the parameter, within 15 s."""
    from transfer_utils.course.runner import execute

    notebook = _truncated_notebook(lesson, tmp_path)
    started = time.perf_counter()
    bad = execute(notebook, tmp_path / "bad", profile="smoke", params=params, progress=False)
    assert bad.status == "failed"
    assert bad.error.startswith("cell 4 "), bad.error  # title, imports, parameters, injected, check
    assert f"ParameterError: parameter '{name}'" in bad.error, bad.error
    # notebook time: the cells' own durations as papermill records them (kernel start-up excluded, which
    # on a busy 2-core machine alone can take 10 s); the whole run, start-up included, stays well bounded
    cells = nbformat.read(bad.output, as_version=4).cells
    cell_seconds = sum(c.metadata.get("papermill", {}).get("duration") or 0.0 for c in cells)
    assert cell_seconds < SMOKE_LIMIT_S, cell_seconds
    assert bad.seconds < 60, bad.seconds
    # the same notebook with the default value runs through the check cell: only the metrics are missing
    good = execute(notebook, tmp_path / "good", profile="smoke", progress=False)
    assert good.error is not None and good.error.startswith("metrics file problem"), good.error
    assert time.perf_counter() - started < 120

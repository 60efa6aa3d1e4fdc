"""The command line: run, sweep, bad parameters, assets; on a tiny notebook that takes seconds."""

import csv
import json
import subprocess
import sys

import pytest

from transfer_utils.course import cli
from transfer_utils.course.runner import parse_value


def run_cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "transfer_utils", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_parse_values():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("[16, 64]") == [16, 64] and parse_value("bert-base-uncased") == "bert-base-uncased"
    assert cli.split_values("1,[2,3],x") == ["1", "[2,3]", "x"]


@pytest.mark.slow
def test_run_writes_notebook_and_metrics(tiny_notebook, tmp_path):
    out = tmp_path / "out"
    done = run_cli("run", str(tiny_notebook), "--profile", "smoke", "-p", "seed", "3", "-p", "n", "5",
                   "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "tiny.metrics.json").read_text())
    assert record["profile"] == "smoke" and record["seed"] == 3
    assert record["metrics"] == {"total": 13, "values": [0, 1, 2, 3, 4]}
    assert (out / "tiny.ipynb").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["notebooks"][0]["status"] == "ok" and summary["notebooks"][0]["peak_mb"] > 10
    assert "| tiny | ok |" in (out / "summary.md").read_text()


@pytest.mark.slow
def test_bad_parameter_value_fails_fast_naming_it(tiny_notebook, tmp_path):
    done = run_cli("run", str(tiny_notebook), "-p", "n", "0", "--out", str(tmp_path), "--quiet")
    assert done.returncode == 1
    assert "FAILED tiny" in done.stderr and "ParameterError: parameter 'n' = 0 is out of range" in done.stderr
    assert "cell" in done.stderr


def test_unknown_parameter_and_profile_fail_before_running(tiny_notebook, tmp_path):
    done = run_cli("run", str(tiny_notebook), "-p", "sed", "1", "--out", str(tmp_path))
    assert done.returncode == 2 and "has no parameter 'sed'" in done.stderr and "seed, device" in done.stderr
    done = run_cli("run", str(tiny_notebook), "--profile", "fast", "--out", str(tmp_path))
    assert done.returncode == 2 and "invalid choice: 'fast'" in done.stderr
    done = run_cli("run", "99_nothing", "--out", str(tmp_path))
    assert done.returncode == 2 and "matches 0 files" in done.stderr


@pytest.mark.slow
def test_sweep_writes_one_row_per_grid_point(tiny_notebook, tmp_path):
    out = tmp_path / "sweep"
    done = run_cli("sweep", str(tiny_notebook), "-p", "seed", "0,1", "-p", "n", "2,4", "--set", "device", "cpu",
                   "--jobs", "2", "--out", str(out), "--profile", "smoke", "--plot", "total", "--quiet", timeout=300)
    assert done.returncode == 0, done.stderr
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["seed"], r["n"], r["total"]) for r in rows] == [("0", "2", "1"), ("0", "4", "6"),
                                                               ("1", "2", "2"), ("1", "4", "7")]
    assert all(r["status"] == "ok" for r in rows)
    assert (out / "total.png").stat().st_size > 1000


@pytest.mark.slow
def test_assets_command_exit_code():
    done = run_cli("assets", "--no-load")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| minilm | model | present |" in done.stdout

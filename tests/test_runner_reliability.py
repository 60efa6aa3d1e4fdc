"""The runner: a stopped run stops everything, parameters mean what they say, summaries add up, no noise."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TINY_NOTEBOOK

SLEEPY = TINY_NOTEBOOK + '''
# %%
import time
time.sleep(120)
'''


def write_notebook(path: Path, text: str) -> Path:
    import jupytext
    import nbformat

    notebook = jupytext.reads(text, fmt="py:percent")
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


def run_cli(*args, cwd=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "transfer_utils", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, "PYTHONPATH": str(Path.cwd())})


@pytest.mark.slow
def test_sigterm_stops_the_child_and_the_kernel_and_records_interrupted(tmp_path):
    import psutil

    notebook = write_notebook(tmp_path / "sleepy.ipynb", SLEEPY)
    out = tmp_path / "out"
    cli = subprocess.Popen([sys.executable, "-m", "transfer_utils", "run", str(notebook), "--out", str(out),
                            "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        process = psutil.Process(cli.pid)
        deadline = time.time() + 60  # wait for the child and its kernel to be up
        while time.time() < deadline:
            tree = process.children(recursive=True)
            if any("ipykernel" in " ".join(p.cmdline()) for p in tree if p.is_running()):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the kernel never started")
        time.sleep(random.uniform(0.2, 2.0))
        tree = process.children(recursive=True)
        assert len(tree) >= 2  # the runner's child and the kernel
        cli.send_signal(signal.SIGTERM)
        _, stderr = cli.communicate(timeout=5)
        _, alive = psutil.wait_procs(tree, timeout=5)
        assert not alive, f"still running after SIGTERM: {[p.cmdline() for p in alive]}"
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 128 + signal.SIGTERM
    assert "interrupted by SIGTERM" in stderr and len(stderr.strip().splitlines()) == 1
    assert "| sleepy | interrupted |" in (out / "summary.md").read_text()
    assert json.loads((out / "summary.json").read_text())["notebooks"][0]["status"] == "interrupted"


def test_profile_parameter_that_disagrees_is_refused(tiny_notebook, tmp_path):
    done = run_cli("run", str(tiny_notebook), "-p", "profile", "smoke", "--profile", "default",
                   "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "disagrees with --profile default" in done.stderr
    assert not (tmp_path / "out" / "summary.md").exists()


@pytest.mark.slow
def test_relative_metrics_path_and_runs_that_share_an_out_folder(tiny_notebook, tmp_path):
    other = write_notebook(tmp_path / "other.ipynb", TINY_NOTEBOOK)
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "out"
    done = run_cli("run", str(tiny_notebook), "--profile", "smoke", "-p", "metrics_path", "m/tiny.json",
                   "--out", str(out), "--quiet", cwd=work)
    assert done.returncode == 0, done.stderr
    assert json.loads((work / "m" / "tiny.json").read_text())["metrics"]["total"] == 3  # where the runner reads
    assert "without encryption" not in done.stderr  # the kernel's start-up warning is silenced
    done = run_cli("run", str(other), "--profile", "smoke", "--out", str(out), "--quiet", cwd=work)
    assert done.returncode == 0, done.stderr
    summary = (out / "summary.md").read_text()
    assert "| tiny | ok |" in summary and "| other | ok |" in summary  # the second run kept the first row
    done = run_cli("run", str(other), "--profile", "smoke", "-p", "n", "0", "--out", str(out), "--quiet", cwd=work)
    summary = (out / "summary.md").read_text()
    assert "| tiny | ok |" in summary and "| other | failed |" in summary and "| other | ok |" not in summary
    assert len(json.loads((out / "summary.json").read_text())["notebooks"]) == 2

"""Lesson 00 in JupyterLab in a real browser, opened the way a learner opens it (``make lab``).

JupyterLab serves a working copy in a temporary workspace on 127.0.0.1 with a token; headless Chromium
(Debian's ``chromium``, driven by Playwright with ``executable_path``: ``playwright install`` downloads a
browser and cannot work offline) runs every cell. The test checks what a learner would see: no error,
the figures drawn, the formulas typeset, the kernel idle at the end, and the tracked notebook untouched.
A screenshot goes to ``data/runs/browser/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from conftest import require
from transfer_utils.core.paths import data_dir
from transfer_utils.course import authoring, workspace

CHROMIUM = Path("/usr/bin/chromium")
LESSON = authoring.lesson_notebooks()[0]
pytestmark = pytest.mark.slow


def chromium_or_skip() -> Path:
    """Debian's Chromium: installed with apt when we are root, otherwise a one-line skip."""
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.run(["apt-get", "update", "-qq"], check=False, **quiet)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, **quiet)
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium and not root with apt to install it: sudo apt-get install chromium")
    return CHROMIUM


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(url: str) -> object:
    """GET a Jupyter server API address and decode the JSON."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def sha256(path: Path) -> str:
    """The file's hash, to prove it did not change."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on a fresh workspace of working copies; yields (base url, token, workspace folder)."""
    folder = tmp_path / "workspace"
    workspace.prepare_workspace(folder)
    copy = folder / LESSON.name  # outputs cleared, so that every figure on the page comes from this run
    notebook = nbformat.read(copy, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(notebook, copy)
    lab_settings = {"notebook-extension/tracker": {"windowingMode": "none"},  # every cell in the page at once
                    "apputils-extension/notification": {"fetchNews": "false"}}  # no pop-up over the page
    for name, values in lab_settings.items():
        path = tmp_path / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = free_port(), "course-browser-test"
    command = workspace.lab_command(folder, port=port, browser=False) + [
        "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
        f"--LabApp.user_settings_dir={tmp_path / 'settings'}", f"--LabApp.workspaces_dir={tmp_path / 'lab-ws'}"]
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the test session's Agg would hide figures
    env.update(COURSE_PROFILE="smoke", JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                api(f"{base}/api/status?token={token}")
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not start: {(tmp_path / 'lab.log').read_text()[-2000:]}")
        yield base, token, folder
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def test_lesson_00_runs_in_jupyterlab_in_a_real_browser(lab):
    chromium = chromium_or_skip()
    sync_api = require("playwright.sync_api")
    base, token, folder = lab
    tracked_before = sha256(LESSON)
    shots = data_dir() / "runs" / "browser"  # kept after the test session (runs_dir() is a temporary one then)
    shots.mkdir(parents=True, exist_ok=True)
    code_cells = sum(c.cell_type == "code" for c in nbformat.read(LESSON, as_version=4).cells)
    expected_images = sum("image/png" in o.get("data", {}) for c in nbformat.read(LESSON, as_version=4).cells
                          if c.cell_type == "code" for o in c.outputs)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True,
                                             args=["--no-sandbox"] if os.geteuid() == 0 else [])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/lab/tree/{LESSON.name}?token={token}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
        for _ in range(120):  # until a kernel runs; JupyterLab may first ask which kernel to start
            select = page.get_by_role("button", name="Select", exact=True)
            if select.count():
                select.click()
            if any(k["execution_state"] == "idle" for k in api(f"{base}/api/kernels?token={token}")):
                break
            page.wait_for_timeout(500)
        else:
            pytest.fail("no kernel started for the lesson")
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        started = time.time()
        # Finished when every code cell shows an execution count and none shows [*] (still running).
        page.wait_for_function(
            "n => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent);"
            " return p.filter(t => /\\d/.test(t)).length === n && p.every(t => !t.includes('*')); }",
            arg=code_cells, timeout=600_000, polling=1000)
        kernels = api(f"{base}/api/kernels?token={token}")
        seconds = time.time() - started
        panel = page.locator(".jp-NotebookPanel .jp-WindowedPanel-outer, .jp-NotebookPanel .jp-Notebook").first
        for _ in range(40):  # scroll through, so anything drawn on demand is drawn
            panel.evaluate("e => e.scrollBy(0, 800)")
            page.wait_for_timeout(100)
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error'], "
                              ".jp-OutputArea-output .jp-RenderedText[data-mime-type='application/vnd.jupyter.error']")
        error_count = errors.count()
        error_texts = [t for t in page.locator(".jp-OutputArea-output").all_inner_texts() if "Traceback" in t]
        images = page.locator(".jp-OutputArea-output img")
        drawn = images.evaluate_all("imgs => imgs.filter(i => i.complete && i.naturalWidth > 0).length")
        formulas = page.locator(".jp-MarkdownOutput mjx-container").count()
        if images.count():
            images.first.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "lesson00_figure.png"))
        page.keyboard.press("Control+s")
        page.wait_for_timeout(1500)
        browser.close()

    assert error_count == 0 and error_texts == [], error_texts[:1]
    assert drawn >= max(1, expected_images), f"{drawn} figures drawn, the committed run has {expected_images}"
    assert formulas >= 1, "no formula was typeset (MathJax)"
    assert all(k["execution_state"] == "idle" for k in kernels), kernels
    assert sha256(LESSON) == tracked_before, "the tracked notebook changed on disk"
    saved = nbformat.read(folder / LESSON.name, as_version=4)
    assert not any(o.get("output_type") == "error" for c in saved.cells if c.cell_type == "code" for o in c.outputs)
    print(f"lesson 00 ran in the browser in {seconds:.0f} s: {drawn} figures, {formulas} formulas; "
          f"screenshot {shots / 'lesson00_figure.png'}")

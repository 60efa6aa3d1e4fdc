"""Run notebooks headless with papermill: one run, a whole course, or a parameter sweep.

Each notebook runs in its own child process so that its wall time and peak memory (the kernel's
maximum resident set size) are measured separately and a crash cannot take the runner down. The child
starts in its own session; SIGTERM or Ctrl-C on the runner stops the child *and* its kernel (which
jupyter_client starts in a session of its own) and records the notebook as "interrupted".
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from tqdm.auto import tqdm

from transfer_utils.core.results import load_metrics, scalar_metrics
from transfer_utils.core.runtime import PROFILES, check_choice
from transfer_utils.core.storage import atomic_write_json, atomic_write_text


class RunError(RuntimeError):
    """A notebook could not be run as asked (bad name, unknown parameter...)."""


class RunInterrupted(KeyboardInterrupt):
    """The runner got SIGTERM or SIGINT; the running notebooks and their kernels have been stopped."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_CHILDREN: set[subprocess.Popen] = set()  # running notebook processes, stopped on SIGTERM / SIGINT
_CHILDREN_LOCK = threading.Lock()


def kill_tree(child: subprocess.Popen, grace: float = 1.5) -> None:
    """Stop a child process, everything it started (the kernel too) and its process group."""
    import psutil

    try:
        procs = psutil.Process(child.pid).children(recursive=True)
    except psutil.Error:
        procs = []
    with contextlib.suppress(psutil.Error):
        procs.append(psutil.Process(child.pid))
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    with contextlib.suppress(OSError):
        os.killpg(child.pid, signal.SIGKILL)  # the child's own session: anything left in it
    psutil.wait_procs(alive, timeout=grace)
    with contextlib.suppress(Exception):
        child.wait(timeout=grace)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside: SIGTERM and SIGINT stop every running notebook (child and kernel), then raise
    :class:`RunInterrupted` in the main thread. Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        with _CHILDREN_LOCK:
            children = list(_CHILDREN)
        for child in children:
            kill_tree(child)
        raise RunInterrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class RunResult:
    """The outcome of one notebook run."""

    notebook: str
    status: str  # "ok" or "failed"
    seconds: float
    peak_mb: float | None
    output: str
    metrics_path: str
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    metrics: dict[str, Any] | None = None


def parse_value(text: str) -> Any:
    """A command-line value as Python: ints, floats, true/false/none, JSON lists; else the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def notebook_parameters(path: Path) -> dict[str, dict[str, Any]]:
    """The notebook's declared parameters (name → type and default) from its ``parameters`` cell."""
    import papermill

    return {name: info for name, info in papermill.inspect_notebook(str(path)).items()}


def check_parameters(path: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Fail fast on names the notebook does not declare; turn values into the declared str type."""
    declared = notebook_parameters(path)
    if not declared:
        raise RunError(f"{path.name} has no cell tagged 'parameters'")
    checked = {}
    for name, value in params.items():
        if name not in declared:
            raise RunError(f"{path.name} has no parameter {name!r}; its parameters are: {', '.join(declared)}")
        if declared[name].get("inferred_type_name") == "str" and value is not None and not isinstance(value, str):
            value = str(value)
        checked[name] = value
    return checked


def find_by_stem(names: Iterable[str], folder: Path, suffix: str = ".ipynb") -> list[Path]:
    """Files in ``folder`` from names such as ``00``, ``00_setup_and_tour`` or a path."""
    found = []
    for name in names:
        path = Path(name)
        if path.suffix == suffix and path.exists():
            found.append(path)
            continue
        matches = sorted(folder.glob(f"{path.stem}*{suffix}"))
        if len(matches) != 1:
            options = ", ".join(p.stem for p in sorted(folder.glob(f"[0-9][0-9]_*{suffix}")))
            raise RunError(f"{name!r} matches {len(matches)} files in {folder}; choose one of: {options}")
        found.append(matches[0])
    return found


def resolve_notebooks(names: Iterable[str], folder: Path) -> list[Path]:
    """Lesson notebooks from names such as ``00`` or ``00_setup_and_tour``."""
    return find_by_stem(names, folder, ".ipynb")


def _file_size_cap(max_file_mb: int | None) -> Any:
    """A function that caps the size of files the child (and its kernel) may write; None when uncapped."""
    if max_file_mb is None or sys.platform == "win32":
        return None

    def cap() -> None:
        import resource

        limit = max_file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return cap


def run_in_child(spec: dict[str, Any], timeout: float | None = None, env: dict[str, str] | None = None,
                 max_file_mb: int | None = None) -> dict[str, Any]:
    """Execute one notebook (``spec``: input, output, params, cwd, progress) in a child process.

    Returns ``{"error": str | None, "seconds": float, "peak_mb": float | None}``; never raises for a
    failing notebook. The child runs in its own session; on a time-out or an interruption it is
    stopped together with its kernel. ``env`` replaces the inherited environment (the grader uses it);
    ``max_file_mb`` caps the files the run may write.
    """
    env = {k: v for k, v in (os.environ if env is None else env).items() if k != "COURSE_PROFILE"}  # the parameter decides
    child = subprocess.Popen([sys.executable, "-m", "transfer_utils.course.runner", json.dumps(spec)],
                             stdout=subprocess.PIPE, text=True, env=env, start_new_session=True,
                             preexec_fn=_file_size_cap(max_file_mb))
    with _CHILDREN_LOCK:
        _CHILDREN.add(child)
    try:
        stdout, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(child)
        return {"error": f"timed out after {timeout} s", "seconds": float(timeout or 0), "peak_mb": None}
    except BaseException:
        kill_tree(child)
        raise
    finally:
        with _CHILDREN_LOCK:
            _CHILDREN.discard(child)
    line = next((ln for ln in stdout.splitlines() if ln.startswith("RUNRESULT ")), None)
    if line is None:
        return {"error": f"runner process exited with code {child.returncode}", "seconds": 0.0, "peak_mb": None}
    return json.loads(line[len("RUNRESULT "):])


def result_from_report(stem: str, report: dict[str, Any], output: Path, metrics_path: Path | str = "",
                       params: dict[str, Any] | None = None) -> RunResult:
    """A ``RunResult`` from a child's report (status from its error; seconds and memory rounded)."""
    peak = None if report["peak_mb"] is None else round(report["peak_mb"], 1)
    return RunResult(stem, "ok" if report["error"] is None else "failed", round(report["seconds"], 2), peak,
                     str(output), str(metrics_path), dict(params or {}), report["error"])


# ipykernel logs this on every start of a kernel over local TCP (the only transport papermill uses);
# it is noise in a headless run, so exactly this line is dropped from the kernel's stderr.
KERNEL_NOISE = re.compile(rb"Kernel is running over TCP without encryption")


def _filter_stderr(noise: re.Pattern = KERNEL_NOISE) -> Any:
    """Route this process's stderr (fd 2, which the kernel inherits) through a filter dropping ``noise``
    lines; returns a function that restores fd 2 and flushes what is left."""
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        pending = b""
        with os.fdopen(read_end, "rb", buffering=0) as source:
            while chunk := source.read(65536):
                pieces = re.split(rb"(?<=[\r\n])", pending + chunk)
                pending = pieces.pop()  # an unfinished line waits for its end
                os.write(real, b"".join(p for p in pieces if not noise.search(p)))
        if pending and not noise.search(pending):
            os.write(real, pending)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()

    def restore() -> None:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes our copy of the pipe; the pump ends once the kernel's copy is gone too
        thread.join(timeout=2)

    return restore


def _child_main(spec_json: str) -> int:
    """Inside the child process: execute one notebook with papermill and report as JSON on stdout."""
    restore_stderr = _filter_stderr()
    import papermill
    from papermill.exceptions import PapermillExecutionError

    spec = json.loads(spec_json)
    error = None
    started = time.perf_counter()
    try:
        papermill.execute_notebook(spec["input"], spec["output"], parameters=spec["params"],
                                   kernel_name="python3", cwd=spec["cwd"], progress_bar=spec["progress"],
                                   request_save_on_cell_execute=True)
    except PapermillExecutionError as exc:
        error = f"cell {exc.cell_index} (execution count {exc.exec_count}): {exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel died, bad notebook file...
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    peak_mb = None
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the kernel, our only child
        peak_mb = rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024
    except ImportError:  # Windows
        pass
    restore_stderr()
    print("RUNRESULT " + json.dumps({"error": error, "seconds": seconds, "peak_mb": peak_mb}))
    return 0


def check_profile_agrees(params: dict[str, Any], profile: str) -> None:
    """Refuse ``-p profile X`` that disagrees with ``--profile Y`` (the run would claim the wrong one)."""
    if "profile" in params and params["profile"] != profile:
        raise RunError(f"-p profile {params['profile']} disagrees with --profile {profile}; "
                       "set the profile with --profile only")


def execute(notebook: Path, out_dir: Path, *, profile: str = "default", params: dict[str, Any] | None = None,
            progress: bool = True, timeout: float | None = None, env: dict[str, str] | None = None,
            max_file_mb: int | None = None) -> RunResult:
    """Run one notebook with papermill into ``out_dir``; never raises for a failing notebook.

    ``env`` and ``max_file_mb`` go to :func:`run_in_child` (the grader runs students' code with them).
    """
    check_choice("profile", profile, PROFILES)
    params = dict(params or {})
    check_profile_agrees(params, profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    params.setdefault("metrics_path", str((out_dir / f"{notebook.stem}.metrics.json").resolve()))
    if params["metrics_path"]:  # the kernel runs in the notebook's folder: pass an absolute path
        params["metrics_path"] = str(Path(str(params["metrics_path"])).expanduser().resolve())
    params = {"profile": profile, **check_parameters(notebook, params)}
    metrics_path = Path(params["metrics_path"])
    metrics_path.unlink(missing_ok=True)  # a stale file must never pass for this run's result
    output = out_dir / notebook.name
    spec = {"input": str(notebook.resolve()), "output": str(output.resolve()), "params": params,
            "cwd": str(notebook.resolve().parent), "progress": progress}
    report = run_in_child(spec, timeout=timeout, env=env, max_file_mb=max_file_mb)
    result = result_from_report(notebook.stem, report, output, metrics_path, params)
    if result.error is None:
        try:
            result.metrics = load_metrics(metrics_path)["metrics"]
        except (OSError, ValueError) as exc:
            result.error = f"metrics file problem: {exc}"
    if result.error is not None:
        result.status = "failed"
    return result


def run_course(notebooks: list[Path], out_dir: Path, *, profile: str = "default",
               params: dict[str, Any] | None = None, progress: bool = True) -> list[RunResult]:
    """Run several notebooks one after another, then write ``summary.json`` and ``summary.md``."""
    results = []
    bar = tqdm(notebooks, desc=f"course ({profile})", unit="notebook", disable=not progress, position=0)
    with stop_on_signals():
        for notebook in bar:
            bar.set_postfix_str(notebook.stem)
            started = time.perf_counter()
            try:
                result = execute(notebook, out_dir, profile=profile, params=params, progress=progress)
            except RunInterrupted as stop:
                results.append(RunResult(notebook.stem, "interrupted", round(time.perf_counter() - started, 2),
                                         None, str(out_dir / notebook.name), "", {"profile": profile, **(params or {})},
                                         f"interrupted by {stop}"))
                write_summary(results, out_dir, profile)
                raise
            results.append(result)
            status = "ok" if result.status == "ok" else f"FAILED: {result.error}"
            tqdm.write(f"{notebook.stem}: {status} in {result.seconds:.0f} s, peak {result.peak_mb} MB")
    write_summary(results, out_dir, profile)
    return results


def _short_metrics(metrics: dict[str, Any] | None, limit: int = 6) -> str:
    """A few scalar metrics, rounded, for one table cell."""
    if not metrics:
        return ""
    scalars = scalar_metrics({"metrics": metrics})
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in list(scalars.items())[:limit])


def write_summary(results: list[RunResult], out_dir: Path, profile: str) -> None:
    """``summary.json`` (everything) and ``summary.md`` (a table) for a set of runs.

    Rows already in the folder's summary are kept, except those of the notebooks run now, which are
    replaced: two runs into one folder add up rather than overwrite each other.
    """
    rows: dict[str, dict[str, Any]] = {}
    try:
        earlier = json.loads((out_dir / "summary.json").read_text())
        for row in earlier.get("notebooks", []):
            row.setdefault("params", {}).setdefault("profile", earlier.get("profile", profile))
            rows[row["notebook"]] = row
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        pass  # no summary yet, or one this version cannot read: start afresh
    for result in results:
        row = asdict(result)
        row["params"] = {"profile": profile, **row["params"]}
        rows.pop(result.notebook, None)
        rows[result.notebook] = row
    merged = sorted(rows.values(), key=lambda r: r["notebook"])
    profiles = sorted({r["params"].get("profile", profile) for r in merged})
    atomic_write_json(out_dir / "summary.json", {"profile": profiles[0] if len(profiles) == 1 else profiles,
                                                 "notebooks": merged})
    title = f"profile `{profiles[0]}`" if len(profiles) == 1 else "profiles " + ", ".join(f"`{p}`" for p in profiles)
    lines = [f"# Course run, {title}", "",
             "| notebook | status | seconds | peak MB | key metrics |", "|---|---|---|---|---|"]
    for r in merged:
        detail = _short_metrics(r.get("metrics")) if r["status"] == "ok" else (r.get("error") or "")
        note = f" ({r['params']['profile']})" if len(profiles) > 1 else ""
        lines.append(f"| {r['notebook']}{note} | {r['status']} | {r['seconds']:.1f} | {r.get('peak_mb')} | {detail} |")
    atomic_write_text(out_dir / "summary.md", "\n".join(lines) + "\n")


def grid(values: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the swept values, in order."""
    names = list(values)
    return [dict(zip(names, combo)) for combo in itertools.product(*(values[n] for n in names))]


def _run_name(stem: str, params: dict[str, Any]) -> str:
    """A folder name for one grid point, e.g. ``01_why_transfer__seed=1__n=64``."""
    parts = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in params.items()]
    safe = "__".join(parts).replace("/", "-").replace(" ", "")
    return f"{stem}__{safe}"


def sweep(notebook: Path, values: dict[str, list[Any]], out_dir: Path, *, profile: str = "default",
          fixed: dict[str, Any] | None = None, jobs: int = 1, progress: bool = True) -> list[RunResult]:
    """Run the grid of ``values`` (plus ``fixed`` parameters) and write ``results.csv``."""
    points = grid(values)
    for point in points:  # fail fast on a bad name before spending time on any run
        check_profile_agrees({**(fixed or {}), **point}, profile)
        check_parameters(notebook, {**(fixed or {}), **point})

    def run_point(point: dict[str, Any]) -> RunResult:
        return execute(notebook, out_dir / _run_name(notebook.stem, point), profile=profile,
                       params={**(fixed or {}), **point}, progress=False)

    with stop_on_signals(), ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(tqdm(pool.map(run_point, points), total=len(points), desc=f"sweep {notebook.stem}",
                            unit="run", disable=not progress))
    write_results_csv(results, points, out_dir / "results.csv")
    return results


def write_results_csv(results: list[RunResult], points: list[dict[str, Any]], path: Path) -> None:
    """One row per run: swept parameters, status, seconds, peak memory and every scalar metric."""
    metric_names: list[str] = []
    for r in results:
        for name in scalar_metrics({"metrics": r.metrics or {}}):
            if name not in metric_names:
                metric_names.append(name)
    columns = list(points[0]) + ["status", "seconds", "peak_mb", "error"] + metric_names
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for point, r in zip(points, results):
        row = {**point, "status": r.status, "seconds": r.seconds, "peak_mb": r.peak_mb, "error": r.error or ""}
        row.update(scalar_metrics({"metrics": r.metrics or {}}))
        writer.writerow(row)
    atomic_write_text(path, buffer.getvalue())


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1]))

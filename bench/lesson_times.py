"""Measure every lesson's wall time and peak memory per profile; update the README and lesson headers.

    python bench/lesson_times.py                      # all lessons, smoke and default
    python bench/lesson_times.py --notebooks 00 07 --profiles default
    python bench/lesson_times.py --notebooks 07 --build   # default runs rebuild the committed notebooks

Each run is a fresh papermill execution (kernel start included), one at a time, so numbers are
comparable. Results go to bench/results/lesson_times.csv (rows for other lessons are kept).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import os
import platform
from pathlib import Path

from transfer_utils.course import catalog
from transfer_utils.course import authoring
from transfer_utils.course import runner
from transfer_utils.core.paths import notebooks_dir, runs_dir
from transfer_utils.core.runtime import cpu_label
from transfer_utils.core.storage import atomic_write_text

FIELDS = ["notebook", "profile", "status", "seconds", "peak_mb", "cpu_count", "machine", "date", "load_1min", "cpu"]


def read_rows(path: Path) -> list[dict[str, str]]:
    """Existing measurements (empty list when none)."""
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, rows: list[dict[str, object]]) -> None:
    """Write the measurement table sorted by notebook and profile."""
    order = {"smoke": 0, "default": 1, "full": 2}
    rows = sorted(rows, key=lambda r: (r["notebook"], order.get(str(r["profile"]), 9)))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def measure(notebook: Path, profile: str, build: bool) -> runner.RunResult:
    """One fresh run of a lesson in a profile (for ``build``, the default run is the committed build)."""
    if not (build and profile == "default"):
        return runner.execute(notebook, runs_dir() / "bench" / profile, profile=profile, progress=False)
    source = notebook.parent / "src" / f"{notebook.stem}.py"
    try:
        _, report = authoring.build(source)
    except RuntimeError as exc:
        return runner.RunResult(notebook.stem, "failed", 0.0, None, str(notebook), "", error=str(exc))
    return runner.result_from_report(notebook.stem, report, notebook)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", nargs="*", help="default: every lesson")
    parser.add_argument("--profiles", nargs="*", default=["smoke", "default"])
    parser.add_argument("--build", action="store_true",
                        help="measure the default profile by rebuilding each committed notebook from its source "
                             "(the same clean default run, so one run serves both)")
    args = parser.parse_args()
    notebooks = (runner.resolve_notebooks(args.notebooks, notebooks_dir()) if args.notebooks
                 else authoring.lesson_notebooks())
    rows = read_rows(catalog.TIMES_CSV)
    failed = []
    for profile in args.profiles:
        for notebook in notebooks:
            result = measure(notebook, profile, build=args.build)
            print(f"{notebook.stem:28s} {profile:8s} {result.status:6s} {result.seconds:7.1f} s  "
                  f"peak {result.peak_mb} MB  {result.error or ''}")
            if result.status != "ok":
                failed.append(f"{notebook.stem} ({profile})")
                continue
            rows = [r for r in rows if (r["notebook"], r["profile"]) != (notebook.stem, profile)]
            rows.append({"notebook": notebook.stem, "profile": profile, "status": result.status,
                         "seconds": result.seconds, "peak_mb": result.peak_mb, "cpu_count": os.cpu_count(),
                         "machine": platform.machine(), "date": datetime.date.today().isoformat(),
                         # a busy machine inflates times (torch threads oversubscribe): say how busy it was
                         "load_1min": round(os.getloadavg()[0], 2),
                         # the same 2 cores differ by 2x between an AVX2 and an AVX-512/bf16 processor
                         "cpu": cpu_label()})
    write_rows(catalog.TIMES_CSV, rows)
    catalog.update_readme()
    for path in catalog.update_time_lines([p.stem for p in notebooks]):
        print(f"updated time line in {path}")
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Command line: ``python -m transfer_utils {assets,run,course,sweep,prefetch,build,student,lint,lab,grade,site}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from transfer_utils.core.paths import notebooks_dir, runs_dir
from transfer_utils.core.runtime import PROFILES


def split_values(text: str) -> list[str]:
    """Split ``1,2,[3,4]`` at top-level commas only, so list values survive."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


def _params(pairs: list[list[str]] | None) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs → a dict of parsed values."""
    from transfer_utils.course.runner import parse_value

    return {name: parse_value(value) for name, value in (pairs or [])}


def cmd_assets(args: argparse.Namespace) -> int:
    """Print the asset table; exit 0 only when every offline asset loads."""
    from transfer_utils.course.asset_checks import format_table, status

    rows = status(load=not args.no_load)
    print(format_table(rows))
    good = {"loads"} if not args.no_load else {"present"}
    missing = [r["asset"] for r in rows if r["status"] not in good]
    if missing:
        print(f"\nnot usable: {', '.join(missing)} (see the 'detail' column for the fix)", file=sys.stderr)
    return 1 if missing else 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run notebooks with papermill; non-zero exit naming the first failing notebook and cell."""
    from transfer_utils.course.runner import RunInterrupted, resolve_notebooks, run_course

    notebooks = resolve_notebooks(args.notebooks, notebooks_dir())
    out = Path(args.out) if args.out else runs_dir() / args.profile
    try:
        results = run_course(notebooks, out, profile=args.profile, params=_params(args.p), progress=not args.quiet)
    except RunInterrupted as stop:
        print(f"interrupted by {stop}: stopped the running notebook and its kernel; summary: {out / 'summary.md'}",
              file=sys.stderr)
        return 128 + stop.signum
    failed = [r for r in results if r.status != "ok"]
    for r in failed:
        print(f"FAILED {r.notebook}: {r.error}  (executed notebook: {r.output})", file=sys.stderr)
    print(f"summary: {out / 'summary.md'}")
    return 1 if failed else 0


def cmd_course(args: argparse.Namespace) -> int:
    """Run every lesson notebook in order."""
    from transfer_utils.course.authoring import lesson_notebooks

    args.notebooks = [str(p) for p in lesson_notebooks()]
    args.p = []
    return cmd_run(args)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run a grid of parameter values; write ``results.csv`` (and a plot with ``--plot``)."""
    from transfer_utils.course.runner import RunInterrupted, parse_value, resolve_notebooks, sweep

    notebook = resolve_notebooks([args.notebook], notebooks_dir())[0]
    values = {name: [parse_value(v) for v in split_values(text)] for name, text in args.p}
    out = Path(args.out)
    try:
        results = sweep(notebook, values, out, profile=args.profile, fixed=_params(args.set), jobs=args.jobs,
                        progress=not args.quiet)
    except RunInterrupted as stop:
        print(f"interrupted by {stop}: stopped the running notebooks and their kernels", file=sys.stderr)
        return 128 + stop.signum
    print(f"results: {out / 'results.csv'}  ({sum(r.status == 'ok' for r in results)}/{len(results)} ok)")
    if args.plot:
        from transfer_utils.core.plots import plot_sweep

        x = args.x or next(iter(values))
        print("plot:", plot_sweep(str(out / "results.csv"), x, args.plot, str(out / f"{args.plot}.png")))
    for r in results:
        if r.status != "ok":
            print(f"FAILED {r.params}: {r.error}", file=sys.stderr)
    return 0 if all(r.status == "ok" for r in results) else 1


def cmd_prefetch(args: argparse.Namespace) -> int:
    """Download online assets into the local cache and record checksums."""
    from transfer_utils.course.prefetch import DEFAULT_ONLINE, prefetch, verify_checksums

    if args.verify:
        bad = verify_checksums()
        print("all recorded checksums match" if not bad else "changed or missing: " + ", ".join(bad))
        return 1 if bad else 0
    report = prefetch(args.names or list(DEFAULT_ONLINE))
    for name, line in report.items():
        print(f"{name}: {line}")
    return 0 if all(line.startswith("ok") for line in report.values()) else 1


def cmd_build(args: argparse.Namespace) -> int:
    """Rebuild committed notebooks from their ``py:percent`` sources and execute them in place."""
    from transfer_utils.course.authoring import build, lint, resolve_sources

    problems = []
    for source in resolve_sources(args.notebooks):
        out, report = build(source, execute=not args.no_execute)
        problems += lint(out) if report else []
        timing = f" in {report['seconds']:.1f} s, peak {report['peak_mb'] or 0:.0f} MB" if report else ""
        print(f"built {out}{timing}")
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


def cmd_student(args: argparse.Namespace) -> int:
    """Write student versions (solutions removed, outputs cleared)."""
    from transfer_utils.course.authoring import write_student_versions

    for path in write_student_versions(Path(args.out)):
        print(f"wrote {path}")
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    """Open JupyterLab on the learner's working copies (``workspace/``), never on the committed lessons."""
    from transfer_utils.course.workspace import open_lab

    return open_lab(student=args.student, fresh=args.fresh, port=args.port, browser=not args.no_browser)


def cmd_grade(args: argparse.Namespace) -> int:
    """Run students' notebooks and write which checks each passed (CSV and Markdown)."""
    from transfer_utils.course.grading import grade_folder, write_grades

    grades = grade_folder(Path(args.submissions), profile=args.profile, timeout=args.timeout)
    if not grades:
        print(f"error: no lesson notebooks (NN_*.ipynb) below {args.submissions}", file=sys.stderr)
        return 2
    csv_path, md_path = write_grades(grades, Path(args.out) if args.out else Path(args.submissions))
    for grade in grades:
        print(f"{grade.submission}: {grade.score} checks passed" + (f" (run stopped: {grade.error})" if grade.error else ""))
    print(f"wrote {csv_path} and {md_path}")
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    """Build the static site from the committed notebooks (no execution)."""
    from transfer_utils.course.site import build_site

    html = build_site(Path(args.out) if args.out else None)
    print(f"built the site: open {html / 'index.html'}")
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    """Check the committed notebooks: clean run, parameters cell, twin in sync."""
    from transfer_utils.course.authoring import check_sync, lesson_notebooks, lint

    problems = [p for nb in lesson_notebooks() for p in lint(nb) + check_sync(nb)]
    print("\n".join(problems) or "all notebooks clean")
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per job."""
    parser = argparse.ArgumentParser(prog="python -m transfer_utils", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("assets", help="status table of every asset; exit 0 when all offline assets load")
    p.add_argument("--no-load", action="store_true", help="only check files exist, do not load them")
    p.set_defaults(func=cmd_assets)

    for name, func, helptext in (("run", cmd_run, "run notebooks headless with papermill"),
                                 ("course", cmd_course, "run every lesson notebook")):
        p = sub.add_parser(name, help=helptext)
        if name == "run":
            p.add_argument("notebooks", nargs="+", help="e.g. 00 or 00_setup_and_tour or a path")
            p.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="set a parameter")
        p.add_argument("--profile", default="default", choices=PROFILES)
        p.add_argument("--out", help="output folder (default data/runs/<profile>)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.set_defaults(func=func)

    p = sub.add_parser("sweep", help="run a notebook over a grid of parameter values")
    p.add_argument("notebook")
    p.add_argument("-p", nargs=2, action="append", required=True, metavar=("NAME", "V1,V2,..."))
    p.add_argument("--set", nargs=2, action="append", metavar=("NAME", "VALUE"), help="a fixed parameter")
    p.add_argument("--profile", default="default", choices=PROFILES)
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    p.add_argument("--out", required=True)
    p.add_argument("--plot", metavar="METRIC", help="also plot METRIC (mean ± std) against the first swept parameter")
    p.add_argument("--x", help="parameter for the plot's x axis (default: the first swept one)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("prefetch", help="download online assets for offline use (needs a network)")
    p.add_argument("names", nargs="*", help="hub model ids, 'resnet18', 'fashion_mnist' (default: all)")
    p.add_argument("--verify", action="store_true", help="only verify the recorded checksums")
    p.set_defaults(func=cmd_prefetch)

    p = sub.add_parser("build", help="rebuild notebooks from notebooks/src/*.py and execute them in place")
    p.add_argument("notebooks", nargs="+", help="e.g. 00 or 00_setup_and_tour")
    p.add_argument("--no-execute", action="store_true")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("student", help="write student versions without solutions")
    p.add_argument("--out", default="student")
    p.set_defaults(func=cmd_student)

    p = sub.add_parser("lab", help="open JupyterLab on your own copies of the lessons (workspace/)")
    p.add_argument("--student", action="store_true", help="new copies are student versions (no solutions)")
    p.add_argument("--fresh", nargs="+", metavar="NN", help="set these lessons' copies aside and start again")
    p.add_argument("--port", type=int)
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=cmd_lab)

    p = sub.add_parser("grade", help="run students' notebooks and tabulate the checks each passed")
    p.add_argument("submissions", help="folder holding NN_*.ipynb files (any depth, e.g. one folder per student)")
    p.add_argument("--profile", default="smoke", choices=PROFILES)
    p.add_argument("--timeout", type=float, default=900, help="seconds per notebook (default 900)")
    p.add_argument("--out", help="where grades.csv and grades.md go (default: the submissions folder)")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("site", help="build the offline HTML site from the committed notebooks (jupyter-book 1.x)")
    p.add_argument("--out", help="folder to build in (default data/site)")
    p.set_defaults(func=cmd_site)

    p = sub.add_parser("lint", help="check committed notebooks")
    p.set_defaults(func=cmd_lint)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors the user can fix are printed as one line."""
    from transfer_utils.course.runner import RunError
    from transfer_utils.core.runtime import ParameterError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (RunError, ParameterError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

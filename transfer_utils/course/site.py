"""The course as a static website, built offline from the committed (executed) notebooks.

``make site`` (``python -m transfer_utils site``) stages the lessons with a front page, the lesson map,
into ``data/site/source`` and builds HTML with jupyter-book 1.x (2.x needs a network) into
``data/site/_build/html``: open ``index.html`` in a browser. Nothing is executed: each page shows the
outputs and figures of the committed run. Formulas are typeset by MathJax, which the site takes from
Debian's ``libjs-mathjax`` when it is installed and from its web address otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from transfer_utils.core.paths import data_dir
from transfer_utils.core.storage import atomic_write_text

LOCAL_MATHJAX = Path("/usr/share/javascript/mathjax")


def site_dir() -> Path:
    """Where the site is staged and built: ``data/site``."""
    return data_dir() / "site"


def front_page() -> str:
    """The site's first page: what the course is, how to run it, and the lesson map with the results."""
    from transfer_utils.course import catalog

    rows = ["| lesson | teaches | learner time | result of the committed run |", "|---|---|---|---|"]
    for info in catalog.CURRICULUM:
        learner = f"{info.reading_min} min reading + {info.exercise_min} min exercises"
        rows.append(f"| [{info.stem[:2]} · {info.title}]({info.stem}.ipynb) | {info.teaches} | {learner} | "
                    f"{catalog.headline(info.stem)} |")
    return "\n".join([
        "# Transfer learning with pretrained models",
        "",
        "Numbered lessons that reuse what a pretrained model already knows for a new task or a new domain, "
        "on real data and real pretrained weights, each runnable on a laptop CPU in minutes with no network.",
        "These pages show the committed run of each lesson (default profile, 2 CPU cores). To run the lessons "
        "yourself, clone the repository and use `make lab` (your own copies in `workspace/`) or `make course`.",
        "",
        "## Lesson map",
        "",
        *rows,
        "",
    ])


def config_yaml(local_mathjax: bool) -> str:
    """jupyter-book's ``_config.yml``: no execution, only the pages in the table of contents."""
    mathjax = "    mathjax_path: mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML\n" if local_mathjax else ""
    return ("title: Transfer learning with pretrained models\n"
            "author: the course's contributors\n"
            "only_build_toc_files: true\n"
            "execute:\n  execute_notebooks: 'off'\n"
            "html:\n  use_repository_button: false\n  home_page_in_navbar: true\n"
            "sphinx:\n  config:\n    html_show_copyright: false\n"
            + mathjax)


def toc_yaml(stems: list[str]) -> str:
    """jupyter-book's ``_toc.yml``: the front page, then one page per lesson in order."""
    return "format: jb-book\nroot: index\nchapters:\n" + "".join(f"- file: {s}\n" for s in stems)


def stage(source: Path) -> list[str]:
    """Write the book's sources into ``source`` (fresh each time); returns the lesson stems."""
    from transfer_utils.course.authoring import lesson_notebooks

    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    lessons = lesson_notebooks()
    for notebook in lessons:
        shutil.copy2(notebook, source / notebook.name)
    local = (LOCAL_MATHJAX / "MathJax.js").exists()
    if local:
        shutil.copytree(LOCAL_MATHJAX, source / "_static" / "mathjax", symlinks=False)
    atomic_write_text(source / "_config.yml", config_yaml(local))
    atomic_write_text(source / "_toc.yml", toc_yaml([p.stem for p in lessons]))
    atomic_write_text(source / "index.md", front_page())
    return [p.stem for p in lessons]


def build_site(out: Path | None = None) -> Path:
    """Stage and build the site; returns the folder holding ``index.html``. Raises with the build's log."""
    root = out or site_dir()
    source = root / "source"
    stage(source)
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(source),
               "--path-output", str(root), "--builder", "html"]
    done = subprocess.run(command, capture_output=True, text=True)
    html = root / "_build" / "html"
    if done.returncode != 0 or not (html / "index.html").exists():
        raise RuntimeError(f"the site did not build (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return html

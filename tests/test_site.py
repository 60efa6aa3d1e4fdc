"""The offline site: ``make site`` builds every lesson page with its figures, and no internal link is dead."""

from __future__ import annotations

import re

import nbformat
import pytest

from transfer_utils.course import authoring, catalog, links, site

pytestmark = pytest.mark.slow


def figures_in(notebook) -> int:
    """How many figures the committed run of a lesson shows."""
    return sum(any(k.startswith("image/") for k in o.get("data", {}))
               for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code" for o in c.outputs)


def test_site_builds_with_every_lesson_figure_and_link(tmp_path):
    html = site.build_site(tmp_path)
    front = (html / "index.html").read_text(encoding="utf-8")
    assert "Lesson map" in front
    for notebook in authoring.lesson_notebooks():
        page = html / f"{notebook.stem}.html"
        assert page.exists(), f"no page for {notebook.stem}"
        assert f'href="{notebook.stem}.html"' in front, f"the front page does not link {notebook.stem}"
        text = page.read_text(encoding="utf-8")
        shown = len(re.findall(r'<img[^>]*src="_images/', text))
        assert shown == figures_in(notebook), f"{notebook.stem}: {shown} figures on the page"
        assert not re.search(r"(?<!\d)0%\|", text), f"{notebook.stem}: a progress bar shows 0%"
        info = next(i for i in catalog.CURRICULUM if i.stem == notebook.stem)
        assert info.title.split()[0] in text
    assert links.broken_in_site(html) == []

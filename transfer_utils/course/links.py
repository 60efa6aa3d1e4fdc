"""Relative links that must resolve: in the README and other Markdown, in the lessons, and in the site.

A link that does nothing when clicked is a dead end for a learner; ``tests/test_classroom.py`` fails on
any relative link here that points nowhere. Web addresses (``https://``) are not fetched: the course
is offline.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat

MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def is_external(target: str) -> bool:
    """True for web addresses, mail links and in-page anchors (nothing on disk to check)."""
    return bool(urlsplit(target).scheme) or target.startswith(("#", "//"))


def markdown_targets(text: str) -> list[str]:
    """The targets of ``[text](target)`` and ``![alt](target)`` links outside code."""
    return MARKDOWN_LINK.findall(CODE.sub(" ", text))


def _resolves(target: str, folder: Path) -> bool:
    """Whether a relative link target, read from a file in ``folder``, names an existing path."""
    path = unquote(urlsplit(target).path)
    return not path or (folder / path).exists()


def broken_in_text(text: str, folder: Path, label: str) -> list[str]:
    """Relative links in Markdown ``text`` (from a file in ``folder``) that point nowhere."""
    return [f"{label} → {t}" for t in markdown_targets(text) if not is_external(t) and not _resolves(t, folder)]


def broken_in_notebook(path: Path) -> list[str]:
    """Relative links in a notebook's Markdown cells that point nowhere."""
    notebook = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    return broken_in_text(text, path.parent, path.name)


def broken_in_markdown_files(paths: list[Path]) -> list[str]:
    """Relative links in Markdown files that point nowhere."""
    return [b for p in paths for b in broken_in_text(p.read_text(encoding="utf-8"), p.parent, str(p.name))]


class _Targets(HTMLParser):
    """Collects ``href`` and ``src`` attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.targets += [v for k, v in attrs if k in ("href", "src") and v]


def html_targets(page: Path) -> list[str]:
    """Every ``href`` and ``src`` in an HTML page."""
    parser = _Targets()
    parser.feed(page.read_text(encoding="utf-8", errors="replace"))
    return parser.targets


def broken_in_site(site: Path) -> list[str]:
    """Links and images between the pages of a built site that point at no file (web addresses skipped)."""
    broken = []
    for page in sorted(site.rglob("*.html")):
        if "_static" in page.relative_to(site).parts:  # the theme's own templates, not pages
            continue
        for target in html_targets(page):
            if not is_external(target) and not target.startswith(("data:", "javascript:")) \
                    and not _resolves(target, page.parent):
                broken.append(f"{page.relative_to(site)} → {target}")
    return broken

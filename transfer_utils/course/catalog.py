"""The course map: which lesson teaches what, and how long each one took when measured.

Minutes come from ``bench/results/lesson_times.csv``, written by ``python bench/lesson_times.py``;
the README's lesson map and notebook 00's table are generated from it, never typed by hand.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from transfer_utils.core.paths import REPO_ROOT, notebooks_dir
from transfer_utils.core.storage import atomic_write_text
from transfer_utils.course import imports

TIMES_CSV = REPO_ROOT / "bench" / "results" / "lesson_times.csv"
MAP_START, MAP_END = "<!-- lesson-map:start -->", "<!-- lesson-map:end -->"
TIME_LINE = re.compile(r"\*\*Time\.\*\*[^\n]*")


@dataclass(frozen=True)
class LessonInfo:
    """One row of the curriculum."""

    stem: str
    title: str
    teaches: str


CURRICULUM = [
    LessonInfo("00_setup_and_tour", "Set-up and tour",
               "environment check, offline assets, profiles and papermill, a first frozen-feature probe"),
    LessonInfo("01_why_transfer", "Why transfer", "learning curves: scratch vs frozen features vs fine-tuning"),
    LessonInfo("02_instance_based", "Instance-based transfer", "importance weights, KMM, KLIEP, TrAdaBoost"),
    LessonInfo("03_feature_based", "Feature-based transfer", "linear probes, CORAL, subspace alignment, TCA, MMD"),
    LessonInfo("04_model_based", "Model-based transfer", "freezing schedules, layer-wise rates, L2-SP, forgetting"),
    LessonInfo("05_domain_adaptation", "Domain adaptation", "DANN with gradient reversal, Deep CORAL"),
    LessonInfo("06_attention_math", "Attention math", "softmax(QKᵀ/√d_k)V by hand, checked against BERT"),
    LessonInfo("07_bert_fine_tuning", "BERT fine-tuning", "the full, correct fine-tuning pipeline and its pitfalls"),
    LessonInfo("08_resnet_image_transfer", "ResNet and EfficientNet image transfer",
               "feature extractor vs fine-tuning (EfficientNet-Lite0), layer transfer (ResNet)"),
    LessonInfo("09_distillation_multitask", "Distillation, multi-task, relations", "soft targets, shared encoders"),
    LessonInfo("10_applications", "Applications", "intent routing, sentiment monitoring, semantic search"),
    LessonInfo("11_peft_lora", "Parameter-efficient fine-tuning", "LoRA and adapters vs full fine-tuning"),
    LessonInfo("12_scaling_out", "Scaling out", "accelerate / DDP, gradient accumulation, mixed precision"),
]


def measured_minutes(path: Path = TIMES_CSV) -> dict[tuple[str, str], float]:
    """(notebook, profile) → minutes, from the latest measurement file (empty if not measured yet)."""
    if not path.exists():
        return {}
    with open(path, newline="") as handle:
        return {(r["notebook"], r["profile"]): float(r["seconds"]) / 60 for r in csv.DictReader(handle)}


def code_and_tests(stem: str) -> str:
    """Markdown links to the package modules a lesson imports (the basics of ``core`` left out) and their tests."""
    modules = [m for m in imports.lesson_imports().get(stem[:2], []) if not m.startswith("transfer_utils.core")]
    cells = []
    for module in modules:
        path = imports.module_path(module).relative_to(REPO_ROOT).as_posix()
        label = module.removeprefix("transfer_utils.")
        found = imports.tests_of(module)
        leaf = module.rsplit(".", 1)[-1]
        named = [t for t in found if t.stem.endswith(leaf)]  # test_<leaf>.py, test_<package>_<leaf>.py
        tests = ", ".join(f"[{t.stem.removeprefix('test_')}]({t.relative_to(REPO_ROOT).as_posix()})"
                          for t in (named or found))
        cells.append(f"[{label}]({path})" + (f" (tests: {tests})" if tests else ""))
    return "<br>".join(cells) or "–"


def lesson_rows() -> list[dict[str, str]]:
    """The lesson map: every curriculum row with its status, code, tests and measured minutes per profile."""
    minutes = measured_minutes()
    rows = []
    for info in CURRICULUM:
        landed = (notebooks_dir() / f"{info.stem}.ipynb").exists()
        cell = {p: f"{minutes[(info.stem, p)]:.1f}" if (info.stem, p) in minutes else "–"
                for p in ("smoke", "default")}
        link = f"[{info.stem}](notebooks/{info.stem}.ipynb)" if landed else f"{info.stem} (planned)"
        rows.append({"lesson": link, "title": info.title, "teaches": info.teaches,
                     "code (and tests)": code_and_tests(info.stem) if landed else "–",
                     "smoke min": cell["smoke"], "default min": cell["default"]})
    return rows


def lesson_map_markdown() -> str:
    """The lesson map as a Markdown table."""
    rows = lesson_rows()
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(r[k] for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def update_readme(readme: Path = REPO_ROOT / "README.md") -> bool:
    """Rewrite the README's lesson map between its markers; True when the file changed."""
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(MAP_START) + ".*?" + re.escape(MAP_END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no {MAP_START} ... {MAP_END} markers")
    new = pattern.sub(lambda _: f"{MAP_START}\n{lesson_map_markdown()}\n{MAP_END}", text)
    if new != text:
        atomic_write_text(readme, new)
    return new != text


def time_line(stem: str) -> str:
    """The measured-minutes line that opens a lesson."""
    minutes = measured_minutes()
    smoke, default = (minutes.get((stem, p)) for p in ("smoke", "default"))
    if smoke is None or default is None:
        return "**Time.** not measured yet (run `python bench/lesson_times.py`)."
    return (f"**Time.** smoke ≈ {smoke:.1f} min · default ≈ {default:.1f} min on a 2-core CPU "
            "(measured by `bench/lesson_times.py`).")


def update_time_lines(stems: list[str] | None = None) -> list[Path]:
    """Rewrite the **Time.** line in each lesson's source and committed notebook from the measurements."""
    import nbformat

    changed = []
    for info in CURRICULUM:
        if stems is not None and info.stem not in stems:
            continue
        line = time_line(info.stem)
        source = notebooks_dir() / "src" / f"{info.stem}.py"
        if source.exists():
            text = source.read_text(encoding="utf-8")
            new = TIME_LINE.sub(line, text, count=1)
            if new != text:
                atomic_write_text(source, new)
                changed.append(source)
        notebook_path = notebooks_dir() / f"{info.stem}.ipynb"
        if notebook_path.exists():
            notebook = nbformat.read(notebook_path, as_version=4)
            cell = next((c for c in notebook.cells if c.cell_type == "markdown" and TIME_LINE.search(c.source)), None)
            if cell is not None and TIME_LINE.search(cell.source).group(0) != line:
                cell.source = TIME_LINE.sub(line, cell.source, count=1)
                atomic_write_text(notebook_path, nbformat.writes(notebook))
                changed.append(notebook_path)
    return changed

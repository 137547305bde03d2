"""`cvlab workshop notebooks --format nbgrader`: the curriculum as an nbgrader source course, put through nbgrader's
own `generate_assignment` and `autograde` with a learner who solved one exercise of lesson 00 and not the other."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cvlab.classroom import lessons
from cvlab.classroom.nbgrader import BEGIN, END
from cvlab.cli import main

pytestmark = pytest.mark.timeout(600)
REPO = Path(__file__).resolve().parents[1]
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


def _nbgrader(course: Path, *args: str, env: dict) -> str:
    r = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def _by_grade_id(nb) -> dict:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def test_nbgrader_generates_and_autogrades_a_lesson(tmp_path, capsys):
    course = tmp_path / "course"
    assert main(["workshop", "notebooks", "--format", "nbgrader", "--out", str(course)]) == 0
    written = json.loads(capsys.readouterr().out)["assignments"]
    cat = lessons.catalogue()
    assert set(written) == {lesson.name for lesson in cat.lessons}
    assert all(written[lesson.name]["points"] == len(lesson.exercises) for lesson in cat.lessons)
    first, second = cat.lessons[0].exercises[:2]
    source = nbformat.read(course / "source" / "00-welcome" / "00-welcome.ipynb", as_version=4)
    cells = _by_grade_id(source)
    for ex in (first, second):
        solution, check = cells[f"ex-{ex.id}"], cells[f"check-{ex.id}"]
        assert solution.metadata.nbgrader["solution"] and not solution.metadata.nbgrader["grade"]
        assert BEGIN in solution.source and END in solution.source
        assert solution.source.index("# Exercise") < solution.source.index(BEGIN)  # the instructions stay
        assert check.metadata.nbgrader == {"grade": True, "solution": False, "locked": True, "points": 1,
                                           "grade_id": f"check-{ex.id}", "schema_version": 3, "task": False}
    markdown = [c for c in source.cells if c.cell_type == "markdown"]
    assert markdown and all(c.metadata.nbgrader["locked"] for c in markdown)  # read-only instructions
    assert not any("solution" in c.metadata.get("tags", []) for c in source.cells)

    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               CVLAB_WORKSPACE=str(tmp_path / "learner-ws"), CVLAB_PROFILE="fast")
    _nbgrader(course, "generate_assignment", "00-welcome", "--force", env=env)
    release = nbformat.read(course / "release" / "00-welcome" / "00-welcome.ipynb", as_version=4)
    given = _by_grade_id(release)
    solved_code = cells[f"ex-{first.id}"].source.split(BEGIN)[1].split(END)[0].strip()
    assert STUB in given[f"ex-{first.id}"].source and solved_code not in given[f"ex-{first.id}"].source
    assert given[f"check-{first.id}"].source == cells[f"check-{first.id}"].source

    # a learner solves the first exercise and leaves the second as released
    given[f"ex-{first.id}"].source = given[f"ex-{first.id}"].source.replace(STUB, solved_code)
    submitted = course / "submitted" / "ana" / "00-welcome"
    submitted.mkdir(parents=True)
    nbformat.write(release, submitted / "00-welcome.ipynb")
    _nbgrader(course, "autograde", "00-welcome", "--student", "ana", env=env)

    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        submission = gb.find_submission("00-welcome", "ana")
        grades = {g.name: (g.auto_score, g.max_score) for nb in submission.notebooks for g in nb.grades}
        assert (submission.score, submission.max_score) == (1.0, 2.0)
    assert grades[f"check-{first.id}"] == (1.0, 1.0) and grades[f"check-{second.id}"] == (0.0, 1.0)

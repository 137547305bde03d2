"""Learner / instructor notebook versions from one source, and the `cvlab workshop` command."""
from __future__ import annotations

import ast
import json
import re

import nbformat
import pytest

from cvlab import notebook_versions as nv
from cvlab import workshop
from cvlab.cli import main
from cvlab.workspace import Workspace

SOLUTION = "tag = trainer.create_tag(project.id, 'red')\nprint(tag.name)"


def _source_nb():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Tags"),
        nbformat.v4.new_code_cell("# Exercise: create a tag named 'red' and print its name.\n" + SOLUTION,
                                  metadata={"tags": ["exercise"]}, execution_count=3,
                                  outputs=[nbformat.v4.new_output("stream", name="stdout", text="red\n")]),
        nbformat.v4.new_code_cell("n = 2 + 2", metadata={"tags": ["exercise"],
                                                         "exercise_prompt": "Add two and two into n."}),
        nbformat.v4.new_markdown_cell("Why: tags come first.", metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("print('shared setup')"),
    ]
    return nb


@pytest.fixture
def source_dir(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    nbformat.write(_source_nb(), d / "10-tags.ipynb")
    return d


def test_learner_version_blanks_exercises_and_keeps_the_rest():
    nb = _source_nb()
    learner = nv.learner_version(nb)
    nbformat.validate(learner)
    assert nv.check_learner(nb, learner) == []
    ex, ex2 = learner.cells[1], learner.cells[2]
    assert ex.source.startswith("# Exercise: create a tag") and nv.TODO in ex.source
    assert "create_tag(" not in ex.source and ex.outputs == [] and ex.execution_count is None
    assert ex2.source == "# Add two and two into n.\n" + nv.TODO
    assert [c.source for c in learner.cells if "solution" in c.metadata.get("tags", [])] == []
    assert learner.cells[-1].source == "print('shared setup')" and len(learner.cells) == 4
    assert nv.instructor_version(nb) == nb and nb.cells[1].source.endswith(SOLUTION)  # source untouched
    # the checker catches a leak
    leaky = nv.learner_version(nb)
    leaky.cells[1].source += "\nprint(tag.name)"
    assert any("still shows code" in p for p in nv.check_learner(nb, leaky))


def test_cli_writes_both_versions(source_dir, tmp_path):
    out = tmp_path / "out"
    assert main(["workshop", "notebooks", "--out", str(out), "--source", str(source_dir)]) == 0
    src = nbformat.read(source_dir / "10-tags.ipynb", as_version=4)
    assert nbformat.read(out / "instructor" / "10-tags.ipynb", as_version=4) == src
    learner = nbformat.read(out / "learner" / "10-tags.ipynb", as_version=4)
    assert nv.check_learner(src, learner) == []
    assert main(["workshop", "notebooks", "--out", str(tmp_path / "l"), "--version", "learner", "--source",
                 str(source_dir)]) == 0
    assert (tmp_path / "l" / "10-tags.ipynb").exists() and not (tmp_path / "l" / "instructor").exists()


def test_curriculum_notebooks_have_clean_learner_versions(tmp_path):
    """CI check over the real notebooks/: learner versions leak no solution, instructor versions equal the
    source, both are valid nbformat."""
    paths = nv.source_notebooks()
    written = nv.write_versions(tmp_path, "both")
    assert len(written) == 2 * len(paths)
    for path in paths:
        src = nbformat.read(path, as_version=4)
        learner = nbformat.read(tmp_path / "learner" / path.name, as_version=4)
        instructor = nbformat.read(tmp_path / "instructor" / path.name, as_version=4)
        nbformat.validate(learner)
        nbformat.validate(instructor)
        assert instructor == src, path.name
        assert nv.check_learner(src, learner) == [], path.name
        exercises = [c for c in src.cells if nv.is_exercise(c)]
        assert exercises, f"{path.name} has no exercise cell: the learner version would equal the instructor one"
        assert learner != instructor, path.name
        blanked = {c.id: c for c in learner.cells}
        for cell in exercises:  # the blanked cell still tells the learner what to write
            assert any(ln.strip("# ") for ln in blanked[cell.id].source.splitlines() if ln != nv.TODO), cell.id


def _assigned(source: str) -> set[str]:
    """Top-level names a cell binds (assignments, imports, defs, for targets): what a later cell may rely on."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


GUARD = re.compile(r"""assert\s+(["'](\w+)["']\s+in\s+globals\(\)(\s+and\s+["'](\w+)["']\s+in\s+globals\(\))?),""")


def test_exercise_checks_fail_clearly_in_the_learner_version():
    """The check cell after an exercise first asserts that the exercise's answer exists, with a message. In the
    learner version (exercise blanked, not executed in CI) that guard must be what fails: each guarded name is
    bound by the solution and by no earlier non-exercise cell, so the check neither passes on its own nor
    dies with a NameError further down."""
    checked = 0
    for path in nv.source_notebooks():
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        for i, cell in enumerate(cells[:-1]):
            if not nv.is_exercise(cell) or not (guard := GUARD.match(cells[i + 1].source)):
                continue
            names = {n for n in guard.group(2, 4) if n}
            before = set().union(*(_assigned(c.source) for c in cells[:i] if not nv.is_exercise(c)))
            assert names <= _assigned(cell.source), (path.name, cell.id, names)
            assert not names & before, (path.name, cell.id, names & before)
            checked += 1
    assert checked >= len(nv.source_notebooks())


def test_workshop_cli_create_handout_progress_reset(tmp_path, capsys):
    w = str(tmp_path / "ws")
    assert main(["workshop", "--workspace", w, "create", "--seats", "2"]) == 0
    ws = Workspace(w)
    seats = workshop.get_seats(ws)
    sw = workshop.open_seat(ws, "seat-02")
    sw.create_project("keep me")
    sw.close()
    sw = workshop.open_seat(ws, "seat-01")
    sw.create_project("mine")
    sw.close()
    capsys.readouterr()
    assert main(["workshop", "--workspace", w, "handout", "--format", "md", "--endpoint", "http://h:1"]) == 0
    text = capsys.readouterr().out
    assert seats[0].training_key in text and seats[1].prediction_key in text and "http://h:1" in text
    out = tmp_path / "h.html"
    assert main(["workshop", "--workspace", w, "handout", "--format", "html", "--out", str(out),
                 "--endpoint", "http://h:1"]) == 0
    assert out.read_text().startswith("<!doctype html>")
    assert "written to" in capsys.readouterr().out
    assert main(["workshop", "--workspace", w, "progress", "--format", "json"]) == 0
    prog = json.loads(capsys.readouterr().out)
    assert [[i["project"] for i in r["details"]["iterations"]] for r in prog["rows"]] == [[], []]  # not trained
    assert main(["workshop", "--workspace", w, "reset", "--seat", "seat-01", "--yes"]) == 0
    assert "seat-01: reset (1 projects" in capsys.readouterr().out
    assert [[p.name for p in workshop.open_seat(ws, s.name).get_projects()] for s in seats] == [[], ["keep me"]]
    assert main(["workshop", "--workspace", w, "reset", "--seat", "seat-09", "--yes"]) == 1
    assert "No workshop seat" in capsys.readouterr().err
    ws.close()

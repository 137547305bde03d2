"""The curriculum as an nbgrader source course, from the lessons' cell tags (``cvlab.classroom.lessons``).

``write_course(out)`` makes ``out/nbgrader_config.py`` and ``out/source/<lesson>/<lesson>.ipynb``, one assignment
per lesson, so an instructor who grades with nbgrader runs its own commands on it (``nbgrader generate_assignment
03-training``, ``nbgrader autograde``, ...). In each notebook:

- an ``exercise`` cell is a solution cell: its instructions stay, its code sits between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION``, which ``generate_assignment`` replaces with nbgrader's stub;
- the exercise's check cell (the cell after it, or the one tagged ``check``) is an autograded test cell worth
  one point, read-only;
- Markdown cells are read-only (nbgrader restores them if a learner edits them);
- cells tagged ``solution`` (worked explanations) are left out, as in the learner version; other code cells are
  ordinary cells the learner runs.

See https://nbgrader.readthedocs.io/en/stable/user_guide/creating_and_grading_assignments.html for the cell types.
"""
from __future__ import annotations

from pathlib import Path

from cvlab.errors import CvlabError

from .lessons import lesson_from_cells, lesson_paths

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
POINTS = 1
CONFIG = '''# nbgrader configuration for the cvlab curriculum (written by `cvlab workshop notebooks --format nbgrader`).
# Run nbgrader in this folder. One assignment per lesson: nbgrader generate_assignment 00-welcome, then release,
# collect and autograde.
c = get_config()  # noqa: F821 - nbgrader's config loader defines it
c.CourseDirectory.course_id = "cvlab"
c.ExecutePreprocessor.timeout = 1800   # a lesson trains small models on the laptop's CPU
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}
'''


def _meta(kind: str, grade_id: str) -> dict:
    base = {"schema_version": 3, "grade_id": grade_id, "task": False}
    if kind == "solution":
        return {**base, "grade": False, "solution": True, "locked": False}
    if kind == "test":
        return {**base, "grade": True, "solution": False, "locked": True, "points": POINTS}
    return {**base, "grade": False, "solution": False, "locked": True}


def _solution_source(cell) -> str:
    """The exercise's instructions (its leading comments, or ``exercise_prompt``) above the solution region."""
    lines = cell.source.splitlines()
    given = cell.get("metadata", {}).get("exercise_prompt")
    if given:
        prompt = [ln if ln.startswith("#") else f"# {ln}" for ln in str(given).splitlines()]
        code = lines
    else:
        n = 0
        while n < len(lines) and (not lines[n].strip() or lines[n].lstrip().startswith("#")):
            n += 1
        prompt, code = lines[:n], lines[n:]
    return "\n".join(prompt + [BEGIN] + code + [END])


def _read(path: Path):
    try:
        from cvlab.course import read_lesson
    except ImportError:  # before the curriculum's course module
        import nbformat
        if path.suffix == ".py":
            import jupytext
            nb = jupytext.read(path)
        else:
            nb = nbformat.read(path, as_version=4)
        for i, c in enumerate(nb.cells):
            c.setdefault("id", f"{path.stem[:2]}-{i:02d}")
        return nb
    return read_lesson(path)


def nbgrader_notebook(nb, name: str):
    """One lesson (an nbformat notebook, instructor version) as an nbgrader source notebook."""
    import copy

    from cvlab.notebook_versions import SOLUTION_TAG
    out = copy.deepcopy(nb)
    _, places = lesson_from_cells(name, out.cells)
    code_cells = [c for c in out.cells if c.get("cell_type") == "code"]
    role = {id(cell): place for cell, (_, _, place) in zip(code_cells, places)}
    cells = []
    for cell in out.cells:
        if SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        cell.metadata = {k: v for k, v in cell.metadata.items() if k != "nbgrader"}
        if cell.cell_type == "markdown":
            cell.metadata["nbgrader"] = _meta("read-only", f"md-{cell.get('id')}")
        elif cell.cell_type == "code" and id(cell) in role and role[id(cell)].role != "code":
            place = role[id(cell)]
            if place.role == "exercise":
                cell.source = _solution_source(cell)
                cell.metadata["nbgrader"] = _meta("solution", f"ex-{place.exercise.id}")
            else:
                cell.metadata["nbgrader"] = _meta("test", f"check-{place.exercise.id}")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    out.cells = cells
    return out


def write_course(out: str | Path, source: str | Path | None = None) -> dict[str, dict]:
    """Write the nbgrader course; returns ``{lesson: {"exercises": n, "points": p}}``."""
    import nbformat
    out = Path(out)
    paths = lesson_paths(source)
    if not paths:
        raise CvlabError("NotFound", "No lessons (NN-name.ipynb) to convert.")
    (out / "source").mkdir(parents=True, exist_ok=True)
    (out / "nbgrader_config.py").write_text(CONFIG)
    written = {}
    for path in paths:
        nb = nbgrader_notebook(_read(path), path.stem)
        nbformat.validate(nb)
        folder = out / "source" / path.stem
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / f"{path.stem}.ipynb")
        tests = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
        written[path.stem] = {"exercises": len(tests), "points": POINTS * len(tests)}
    return written


__all__ = ["BEGIN", "END", "POINTS", "nbgrader_notebook", "write_course"]

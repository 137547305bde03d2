"""Learner and instructor versions of the curriculum notebooks, from one source.

The source notebooks hold the solutions. A code cell tagged ``exercise`` (cell metadata ``"tags": ["exercise"]``)
is an exercise: the learner version keeps its leading comment lines (the instructions), or
``metadata["exercise_prompt"]`` when given, replaces the code with a ``# TODO`` prompt and drops its outputs (they
would give the answer away). Cells tagged ``solution`` (any type, e.g. a worked explanation) are left out of the
learner version. The instructor version is the source, unchanged.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from cvlab.errors import CvlabError

EXERCISE_TAG = "exercise"
SOLUTION_TAG = "solution"
TODO = "# TODO: write your code here, then run the cell."
VERSIONS = ("learner", "instructor")


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def is_exercise(cell) -> bool:
    return cell.get("cell_type") == "code" and EXERCISE_TAG in _tags(cell)


def _prompt(cell) -> list[str]:
    given = cell.get("metadata", {}).get("exercise_prompt")
    if given:
        return [f"# {line}" if not line.startswith("#") else line for line in str(given).splitlines()]
    lines = []
    for line in cell.source.splitlines():
        if line.strip().startswith("#"):
            lines.append(line)
        elif line.strip():
            break
    return lines


def solution_lines(cell) -> list[str]:
    """The code lines of an exercise cell (what the learner must not see)."""
    return [ln for ln in cell.source.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def learner_version(nb):
    """A copy of ``nb`` with exercises blanked and solution cells removed."""
    out = copy.deepcopy(nb)
    cells = []
    for cell in out.cells:
        if SOLUTION_TAG in _tags(cell):
            continue
        if is_exercise(cell):
            cell.source = "\n".join(_prompt(cell) + [TODO])
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    out.cells = cells
    return out


def instructor_version(nb):
    return copy.deepcopy(nb)


def source_notebooks(source: str | Path | None = None) -> list[Path]:
    from cvlab.lab import find_notebooks
    folder = Path(source) if source else find_notebooks()
    paths = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if not paths:
        raise CvlabError("NotFound", f"No notebooks (*.ipynb) in {folder}.")
    return paths


def write_versions(out: str | Path, version: str = "both", source: str | Path | None = None) -> list[Path]:
    """Write ``out/learner/*.ipynb`` and ``out/instructor/*.ipynb`` (or only one version, into ``out``)."""
    if version not in VERSIONS + ("both",):
        raise CvlabError("BadRequestInvalid", f"version {version!r}: use learner, instructor or both.")
    out = Path(out)
    make = {"learner": learner_version, "instructor": instructor_version}
    chosen = VERSIONS if version == "both" else (version,)
    written = []
    for path in source_notebooks(source):
        nb = nbformat.read(path, as_version=4)
        for v in chosen:
            target = (out / v if version == "both" else out) / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            made = make[v](nb)
            nbformat.validate(made)
            nbformat.write(made, target)
            written.append(target)
    return written


def check_learner(source_nb, learner_nb) -> list[str]:
    """Problems that would leak a solution: exercise cells still holding code or outputs, solution cells kept."""
    problems = []
    learner_cells = {c.get("id"): c for c in learner_nb.cells}
    for cell in source_nb.cells:
        cid = cell.get("id")
        if SOLUTION_TAG in _tags(cell) and cid in learner_cells:
            problems.append(f"solution cell {cid} is in the learner version")
        if not is_exercise(cell) or cid not in learner_cells:
            continue
        blank = learner_cells[cid]
        leaked = solution_lines(blank)  # a blanked exercise is comments only
        if leaked:
            problems.append(f"exercise cell {cid} still shows code: {leaked[0].strip()!r}")
        if blank.get("outputs"):
            problems.append(f"exercise cell {cid} still has outputs")
        if "# TODO" not in blank.source:
            problems.append(f"exercise cell {cid} has no # TODO prompt")
    return problems

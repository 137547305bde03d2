"""The course as data for workshop reports: each lesson's code cells, its exercises and the check cell of each.

Everything comes from the lessons' cell tags (``cvlab.notebook_versions``): a code cell tagged ``exercise`` is an
exercise; its check is the cell tagged ``check`` after it, else the next code cell (the curriculum's convention:
the cell after an exercise asserts its answer). A cell is known by its id (JupyterLab sends it with every run) and
by a digest of its source (for front-ends that send no id), so a learner's working copy and the repository's
lesson name the same cells.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

CHECK_TAG = "check"
_HEADING = re.compile(r"^#\s+(.+)$", re.MULTILINE)


def cell_digest(source: str) -> str:
    """A short digest of a cell's source, the same whichever front-end sent it (line ends, outer blank lines)."""
    text = "\n".join(line.rstrip() for line in source.replace("\r\n", "\n").strip().split("\n"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Exercise:
    id: str            # the exercise cell's id, e.g. "03-12"
    lesson: str        # the lesson's number, e.g. "03"
    number: int        # 1, 2, ... within the lesson
    title: str         # the first line of its instructions
    check_id: str      # the check cell's id
    check_digest: str

    @property
    def label(self) -> str:
        return f"{self.lesson} ex {self.number}"


@dataclass(frozen=True)
class Lesson:
    number: str        # "03": the column a lesson has in every report
    name: str          # "03-training"
    title: str         # the notebook's first heading
    code_cells: int
    exercises: tuple[Exercise, ...]


@dataclass(frozen=True)
class CellPlace:
    lesson: str
    index: int                     # 1-based among the lesson's code cells
    role: str                      # "code", "exercise" or "check"
    exercise: Exercise | None = None


@dataclass
class Catalogue:
    lessons: list[Lesson] = field(default_factory=list)
    by_id: dict[str, CellPlace] = field(default_factory=dict)
    by_digest: dict[str, list[CellPlace]] = field(default_factory=dict)
    cells: list[tuple[str, str, CellPlace]] = field(default_factory=list)  # (id, digest, place), in order

    def add(self, cell_id: str, digest: str, place: CellPlace) -> None:
        self.cells.append((cell_id, digest, place))
        self.by_id.setdefault(cell_id, place)
        self.by_digest.setdefault(digest, []).append(place)

    def lesson(self, number: str) -> Lesson | None:
        return next((x for x in self.lessons if x.number == number), None)

    def exercises(self) -> list[Exercise]:
        return [e for lesson in self.lessons for e in lesson.exercises]

    def place(self, cell_id: str | None, digest: str) -> list[CellPlace]:
        """Where a cell that ran belongs: one place when its id or source is known, several when its source
        appears in more than one lesson (``from cvlab import curriculum as cv``), none for the learner's own."""
        if cell_id and cell_id in self.by_id:
            return [self.by_id[cell_id]]
        return list(self.by_digest.get(digest, []))

    def to_json(self) -> dict:
        return {"lessons": [{"number": x.number, "name": x.name, "title": x.title, "code_cells": x.code_cells,
                             "exercises": [e.__dict__ for e in x.exercises]} for x in self.lessons]}


def _tags(cell) -> list[str]:
    return list((cell.get("metadata") or {}).get("tags") or [])


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _title(cells, fallback: str) -> str:
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            m = _HEADING.search(_source(cell))
            if m:
                return m.group(1).strip()
    return fallback


def _prompt_title(source: str) -> str:
    for line in source.splitlines():
        text = line.strip().lstrip("#").strip()
        if text:
            text = re.sub(r"^exercise\s*[:.-]\s*", "", text, flags=re.IGNORECASE)
            return text if len(text) <= 90 else text[:87] + "..."
    return "exercise"


def lesson_from_cells(name: str, cells: list) -> tuple[Lesson, list[tuple[str, str, CellPlace]]]:
    """One lesson from its cells (dicts or nbformat nodes): the Lesson and (cell id, digest, place) per code
    cell."""
    number = name[:2]
    code = [(i, c) for i, c in enumerate(cells) if c.get("cell_type") == "code"]
    explicit = any(CHECK_TAG in _tags(c) for _, c in code)
    places: list[tuple[str, str, CellPlace]] = []
    exercises: list[Exercise] = []
    role_of: dict[int, tuple[str, Exercise | None]] = {}
    for pos, (i, cell) in enumerate(code):
        if "exercise" not in _tags(cell):
            continue
        follow = code[pos + 1:]
        check = next((c for _, c in follow if CHECK_TAG in _tags(c)), None) if explicit else \
            (follow[0][1] if follow and "exercise" not in _tags(follow[0][1]) else None)
        if check is None:
            continue
        ex = Exercise(str(cell.get("id") or f"{number}-{i:02d}"), number, len(exercises) + 1,
                      _prompt_title(_source(cell)), str(check.get("id") or ""), cell_digest(_source(check)))
        exercises.append(ex)
        role_of[id(cell)] = ("exercise", ex)
        role_of[id(check)] = ("check", ex)
    for index, (i, cell) in enumerate(code, 1):
        role, ex = role_of.get(id(cell), ("code", None))
        places.append((str(cell.get("id") or f"{number}-{i:02d}"), cell_digest(_source(cell)),
                       CellPlace(number, index, role, ex)))
    return Lesson(number, name, _title(cells, name), len(code), tuple(exercises)), places


def _read_cells(path: Path) -> list:
    """A lesson's cells: an .ipynb read as plain JSON (no schema validation: this runs beside a notebook), or a
    jupytext source."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        for i, c in enumerate(cells):
            c.setdefault("id", f"{path.stem[:2]}-{i:02d}")
        return cells
    try:
        from cvlab.course import read_lesson
    except ImportError:  # before the curriculum's course module: jupytext directly
        import jupytext
        nb = jupytext.read(path)
        for i, c in enumerate(nb.cells):
            c.setdefault("id", f"{path.stem[:2]}-{i:02d}")
        return nb.cells
    return read_lesson(path).cells


def lesson_paths(source: str | Path | None = None) -> list[Path]:
    """The lessons in order: ``NN-name.ipynb`` in the curriculum folder, or the jupytext ``NN-name.py`` source
    where a lesson has no notebook file (the rule of ``cvlab.course.lesson_sources``, without importing nbformat,
    which costs seconds)."""
    from cvlab.lab import find_notebooks

    folder = Path(source) if source else find_notebooks()
    by_stem = {p.stem: p for p in folder.glob("[0-9][0-9]-*.py")}
    by_stem.update({p.stem: p for p in folder.glob("[0-9][0-9]-*.ipynb")})
    return [by_stem[s] for s in sorted(by_stem)]


def build(paths: list[Path] | None = None) -> Catalogue:
    cat = Catalogue()
    for path in paths if paths is not None else lesson_paths():
        lesson, places = lesson_from_cells(path.stem, _read_cells(path))
        cat.lessons.append(lesson)
        for cell_id, digest, place in places:
            cat.add(cell_id, digest, place)
    return cat


_CACHE: dict[tuple, Catalogue] = {}


def _from_json(data: dict) -> Catalogue:
    cat = Catalogue()
    for x in data["lessons"]:
        cat.lessons.append(Lesson(x["number"], x["name"], x["title"], x["code_cells"],
                                  tuple(Exercise(**e) for e in x["exercises"])))
    for cell_id, digest, place in data["places"]:
        ex = place.pop("exercise", None)
        cat.add(cell_id, digest, CellPlace(**place, exercise=Exercise(**ex) if ex else None))
    return cat


def _to_json(cat: Catalogue, key) -> dict:
    places = [[cell_id, digest, {"lesson": p.lesson, "index": p.index, "role": p.role,
                                 "exercise": p.exercise.__dict__ if p.exercise else None}]
              for cell_id, digest, p in cat.cells]
    return {"key": [list(k) for k in key], **cat.to_json(), "places": places}


def catalogue(source: str | Path | None = None, cache_file: Path | None = None) -> Catalogue:
    """The course's catalogue, rebuilt only when a lesson file changes (the reporter and the server ask often);
    ``cache_file`` keeps it between processes (reading the lessons can take seconds on a busy laptop)."""
    try:
        paths = lesson_paths(source)
    except Exception:  # noqa: BLE001 - no curriculum next to this cvlab: reports still show quiz and iterations
        return Catalogue()
    key = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    if key in _CACHE:
        return _CACHE[key]
    cat = None
    if cache_file is not None and cache_file.is_file():
        try:
            data = json.loads(cache_file.read_text(encoding="utf-8"))
            if [tuple(k) for k in data["key"]] == list(key):
                cat = _from_json(data)
        except (ValueError, KeyError, TypeError):
            cat = None
    if cat is None:
        cat = build(paths)
        if cache_file is not None:
            tmp = cache_file.with_name(cache_file.name + ".tmp")
            tmp.write_text(json.dumps(_to_json(cat, key)), encoding="utf-8")
            tmp.replace(cache_file)
    _CACHE.clear()
    _CACHE[key] = cat
    return cat


__all__ = ["CHECK_TAG", "Catalogue", "CellPlace", "Exercise", "Lesson", "build", "catalogue", "cell_digest",
           "lesson_from_cells", "lesson_paths"]

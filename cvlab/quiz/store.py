"""The quiz's own records: one JSON object per line in ``<workspace>/quiz/records.jsonl``, append-only.

Nothing is ever rewritten: an answer, an exam attempt or a reset is one more line, so a crash can at worst leave a
half-written last line. A line that is not a valid record is reported (``store.problems`` and the
``cvlab.quiz`` logger) and skipped; every other record still counts. The workspace's database is not touched
(the folder is the only thing taken from it), so this store works whatever shape the workspace code takes.

Record types (every record has ``v``, ``type`` and an ISO-8601 UTC ``at``):

- ``answer``: ``question``, ``points``, ``max_points``, ``correct``, ``response`` (ids), ``learner``,
  ``attempt`` (with the learner id this re-creates the screen: ``quiz.present(question, learner, attempt)``),
  ``mode`` (practice, review, notebook, exam), optionally ``facts`` (numbers the notebook passed) and ``exam``.
- ``exam``: one finished exam attempt (form, scaled score, per-skill scores, flags, timing).
- ``reset``: records before it no longer count (``cvlab quiz --reset``, a workshop seat reset).
"""
from __future__ import annotations

import json
import logging
import os
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from cvlab.errors import CvlabError

log = logging.getLogger("cvlab.quiz")
FOLDER = "quiz"
RECORDS = "records.jsonl"
LEARNER_FILE = "learner.txt"
LEGACY_SETTING = "quiz_progress"  # where cvlab kept progress before this store (read once, never written)
_REQUIRED = {"answer": {"question": str, "points": (int, float), "max_points": int},
             "exam": {"attempt": int, "scaled": int, "form": list},
             "reset": {}}
_LEARNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _folder_of(ws_or_path) -> Path:
    base = getattr(ws_or_path, "path", ws_or_path)
    if base is None:
        raise CvlabError("BadRequest", "the quiz needs a workspace (or its folder) to keep its records")
    return Path(base).expanduser() / FOLDER


class QuizStore:
    """Append-only JSON-lines records of one workspace's quiz answers, exams and resets."""

    def __init__(self, ws_or_path, clock: Callable[[], datetime] | None = None):
        self.folder = _folder_of(ws_or_path)
        self.path = self.folder / RECORDS
        self.clock = clock or utcnow
        self.problems: list[str] = []
        self._legacy = ws_or_path if hasattr(ws_or_path, "get_setting") else None

    def __repr__(self) -> str:
        return f"QuizStore({str(self.path)!r})"

    def now(self) -> datetime:
        return self.clock()

    # ---- learner ------------------------------------------------------------------------------------------
    @property
    def learner(self) -> str:
        """This workspace's learner id (made once, kept in quiz/learner.txt; a workshop sets the seat name)."""
        path = self.folder / LEARNER_FILE
        try:
            name = path.read_text(encoding="utf-8").strip()
            if _LEARNER.match(name):
                return name
            self.problems.append(f"{path}: {name[:40]!r} is not a learner id; made a new one")
        except FileNotFoundError:
            pass
        name = "learner-" + uuid.uuid4().hex[:10]
        self.set_learner(name)
        return name

    def set_learner(self, name: str) -> None:
        if not isinstance(name, str) or not _LEARNER.match(name):
            raise CvlabError("BadRequest", f"learner id {name!r}: use 1-64 letters, digits, '.', '_', '-' or '@'")
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / LEARNER_FILE).write_text(name + "\n", encoding="utf-8")

    # ---- writing ------------------------------------------------------------------------------------------
    def append(self, record: dict) -> dict:
        """Add one record (a line); returns it with ``v`` and ``at`` filled in."""
        if record.get("type") not in _REQUIRED:
            raise CvlabError("BadRequest", f"unknown quiz record type {record.get('type')!r}")
        self._import_legacy()
        full = {"v": 1, "at": self.now().isoformat(timespec="seconds"), **record}
        line = json.dumps(full, ensure_ascii=False, sort_keys=True, default=str)
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell():  # a crash mid-line leaves no newline: start on a fresh line so this record stays whole
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write(line.encode("utf-8") + b"\n")
            f.flush()
            os.fsync(f.fileno())
        return full

    def reset(self) -> None:
        self.append({"type": "reset"})

    def record_answer(self, grade, presentation=None, mode: str = "practice", facts: dict | None = None,
                      exam: int | None = None) -> dict:
        """One graded answer (a ``Grade``) with what re-creates the learner's screen."""
        rec: dict[str, Any] = {
            "type": "answer", "question": grade.question_id, "correct": bool(grade.correct),
            "points": float(grade.score * grade.max_points if grade.points is None else grade.points),
            "max_points": int(grade.max_points), "response": grade.response, "mode": mode}
        if presentation is not None:
            rec.update(learner=presentation.learner, attempt=presentation.attempt,
                       kind=presentation.question.kind, skill=presentation.question.skill)
        if facts:
            rec["facts"] = {k: float(v) for k, v in facts.items()}
        if exam is not None:
            rec["exam"] = exam
        return self.append(rec)

    def next_attempt(self, question_id: str) -> int:
        """How many practice answers this question already has (resets included): the next screen's attempt."""
        return sum(1 for r in self.records("answer", since_reset=False)
                   if r["question"] == question_id and r.get("mode") != "exam")

    def _import_legacy(self) -> None:
        """Progress kept in the workspace settings by earlier cvlab becomes answer records, once."""
        if self._legacy is None or self.path.exists():
            return
        ws, self._legacy = self._legacy, None
        try:
            raw = ws.get_setting(LEGACY_SETTING)
        except Exception as exc:  # an unreadable setting must not stop the quiz; say so and go on
            self.problems.append(f"could not read the old quiz progress from the workspace: {exc}")
            return
        raw = json.loads(raw) if isinstance(raw, str) and raw else raw
        if not isinstance(raw, dict) or not raw:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for qid, entry in sorted(raw.items()):
            if isinstance(entry, dict):
                right = bool(entry.get("last"))
                lines.append(json.dumps({"v": 1, "type": "answer", "question": qid, "points": float(right),
                                         "max_points": 1, "correct": right, "mode": "legacy", "legacy": True,
                                         "at": entry.get("last_at") or self.now().isoformat(timespec="seconds")},
                                        sort_keys=True))
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))

    # ---- reading ------------------------------------------------------------------------------------------
    def records(self, type: str | None = None, *, since_reset: bool = True) -> list[dict]:
        """Valid records in file order (after the last reset unless since_reset=False); bad lines are skipped
        and described in ``self.problems``."""
        self._import_legacy()
        self.problems = [p for p in self.problems if not p.startswith(str(self.path))]
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out: list[dict] = []
        for number, raw in enumerate(data.split(b"\n"), 1):
            if not raw.strip():
                continue
            rec, why = _decode(raw)
            if why:
                msg = f"{self.path} line {number}: {why}; skipped (the other records still count)"
                self.problems.append(msg)
                log.warning(msg)
                continue
            if rec["type"] == "reset" and since_reset:
                out = []
                continue
            out.append(rec)
        return [r for r in out if type is None or r["type"] == type]

    def answers(self) -> list[dict]:
        return self.records("answer")

    def exams(self) -> list[dict]:
        return self.records("exam")


def _decode(raw: bytes) -> tuple[dict | None, str | None]:
    try:
        rec = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"not a JSON record ({exc.__class__.__name__}: {str(exc)[:60]})"
    if not isinstance(rec, dict):
        return None, "not a JSON object"
    kind = rec.get("type")
    if kind not in _REQUIRED:
        return None, f"unknown record type {kind!r}"
    for key, typ in _REQUIRED[kind].items():
        if not isinstance(rec.get(key), typ) or isinstance(rec.get(key), bool):
            return None, f"{kind} record without a valid {key!r}"
    if kind == "answer" and not (rec["max_points"] > 0 and 0 <= rec["points"] <= rec["max_points"]):
        return None, "answer record with points outside 0..max_points"
    try:
        rec["at_dt"] = parse_time(rec["at"])
    except (KeyError, TypeError, ValueError):
        return None, "record without a valid 'at' time"
    return rec, None


def open_store(ws_or_path, clock=None) -> QuizStore:
    """The quiz store of a workspace (or of a workspace folder)."""
    return ws_or_path if isinstance(ws_or_path, QuizStore) else QuizStore(ws_or_path, clock)


def answers(ws_or_path) -> list[dict]:
    """Every answer record since the last reset (what the workshop reports to an instructor)."""
    recs = open_store(ws_or_path).answers()
    return [{k: v for k, v in r.items() if k != "at_dt"} for r in recs]


__all__ = ["QuizStore", "answers", "open_store", "parse_time", "utcnow"]

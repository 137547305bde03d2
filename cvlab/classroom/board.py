"""The Class table: one row per seat, what the instructor needs at a glance, from one place for every face.

A row folds two sources: the events the seat's joined laptop sent (``cvlab.classroom.store``: lessons, exercise
checks, quiz answers, iterations trained on the laptop) and the seat's own workspace on the server (what the
learner did with the SDK against the seat's keys). Columns: the furthest lesson, one column per exercise grouped
by lesson (passed, failing and how often), one per quiz skill (right the last time / answered, as the quiz's
own Leitner cards count them), the best AP of any iteration, the published models, the last progress, and who
needs help: no progress for ``idle_minutes``, or ``failures`` failed checks of an exercise not passed since.

``Board.table()`` gives JSON (the portal's Class page and ``--format json``); ``to_csv`` and ``to_text`` render
the same columns for the CSV export and ``cvlab workshop progress --format table``.
"""
from __future__ import annotations

import csv
import io
import threading
from dataclasses import dataclass, field
from datetime import datetime

from . import lessons as lessons_mod
from .store import ClassStore, parse_time, utcnow

IDLE_MINUTES = 10
FAILURES = 3
OFFLINE_S = 60  # a reporter sends at least every 20 s while it runs


@dataclass
class SeatState:
    """What one seat's laptop reported, folded event by event."""

    lessons: dict[str, dict] = field(default_factory=dict)
    exercises: dict[str, dict] = field(default_factory=dict)
    quiz: list[dict] = field(default_factory=list)
    exams: list[dict] = field(default_factory=list)
    iterations: dict[str, dict] = field(default_factory=dict)
    last_progress: datetime | None = None

    def apply(self, kind: str, at: datetime, data: dict) -> None:
        if self.last_progress is None or at > self.last_progress:
            self.last_progress = at
        if kind == "lesson":
            entry = self.lessons.setdefault(data["lesson"], {"cell": 0, "cells": data.get("cells")})
            entry["cell"] = max(entry["cell"], int(data.get("cell") or 0))
            entry["cells"] = data.get("cells") or entry["cells"]
            entry["at"] = at.isoformat()
        elif kind == "exercise":
            e = self.exercises.setdefault(data["exercise"], {
                "lesson": data.get("lesson"), "number": data.get("number"), "passed": False, "attempts": 0,
                "failed": 0, "failed_since_pass": 0, "error": None})
            e["attempts"] += 1
            e["at"] = at.isoformat()
            if data.get("passed"):
                e["passed"], e["failed_since_pass"] = True, 0
            else:
                e["failed"] += 1
                e["failed_since_pass"] += 1
                e["error"] = data.get("error")
                e["passed"] = False  # the last check decides: a learner can break a passed exercise again
        elif kind in ("quiz", "quiz_reset"):
            self.quiz.append({"type": "answer" if kind == "quiz" else "reset", "at": at.isoformat(), "at_dt": at,
                              **data})
        elif kind == "exam":
            self.exams.append({"at": at.isoformat(), **data})
        elif kind == "iteration":
            if data.get("status") == "Deleted":
                self.iterations.pop(data.get("id"), None)
            else:
                self.iterations[data["id"]] = {**data, "source": "laptop"}

    def quiz_answers(self) -> list[dict]:
        """Answer records since the last quiz reset (as ``cvlab.quiz`` counts them)."""
        out: list[dict] = []
        for rec in self.quiz:
            out = [] if rec["type"] == "reset" else out + [rec]
        return out


def quiz_by_skill(answers: list[dict]) -> dict[str, tuple[int, int]]:
    """skill -> (right the last time, questions answered), from the quiz's own Leitner cards."""
    from cvlab import quiz
    from cvlab.errors import CvlabError
    out: dict[str, tuple[int, int]] = {}
    for qid, card in quiz.cards(answers).items():
        try:
            skill = quiz.get_question(qid).skill
        except CvlabError:
            continue
        right, n = out.get(skill, (0, 0))
        out[skill] = (right + (not card.missed), n + 1)
    return out


def _cell(text="", value=None, state="", title="") -> dict:
    return {"text": text, "value": text if value is None else value, "state": state, "title": title}


def _minutes(delta) -> int:
    return int(delta.total_seconds() // 60)


class Board:
    """The Class table of one instructor workspace. ``open_ws(name)`` gives a seat's workspace (the server passes
    its cached ones); events are read incrementally, so a refresh every second costs little."""

    def __init__(self, ws, store: ClassStore | None = None, open_ws=None, source=None):
        self.ws = ws
        self.store = store or ClassStore(ws)
        self.open_ws = open_ws
        self.source = source
        self._lock = threading.Lock()
        self._states: dict[str, SeatState] = {}
        self._last_id = 0
        self._generation = None
        self._metrics: dict[tuple, dict] = {}

    # ---- folding the events -----------------------------------------------------------------------------------
    def refresh(self) -> None:
        with self._lock:
            gen = self.store.generation()
            if gen != self._generation:
                self._states, self._last_id, self._generation = {}, 0, gen
            for rowid, seat, kind, at, received, data in self.store.events_after(self._last_id):
                when = min(parse_time(at), parse_time(received))  # a laptop's clock ahead never looks busier
                try:
                    self._states.setdefault(seat, SeatState()).apply(kind, when, data)
                except (KeyError, TypeError, ValueError):
                    pass  # an event of an older or newer cvlab: shown in details, not in the table
                self._last_id = rowid

    def state(self, seat: str) -> SeatState:
        self.refresh()
        with self._lock:
            return self._states.get(seat) or SeatState()

    # ---- the seat's own workspace (SDK work on the server) -----------------------------------------------------
    def _seat_side(self, name: str) -> tuple[list[dict], datetime | None, list[dict]]:
        """The seat's iterations on the server, its latest change, and the quiz scores it submitted."""
        from cvlab import workshop
        from cvlab.classroom.reporter import iteration_snapshot
        sw = self.open_ws(name) if self.open_ws else workshop.open_seat(self.ws, name)
        try:
            out, last = [], None
            for p in sw.get_projects():
                for when in (p.created, p.last_modified):
                    last = max(filter(None, (last, when)), default=None)
                for it in sw.get_iterations(p.id):
                    last = max(filter(None, (last, it.last_modified, it.created)), default=None)
                    snap = {**iteration_snapshot(sw, p, it, self._metrics), "queue_position": it.queue_position,
                            "source": "seat"}
                    out.append(snap)
            return out, last, sw.get_setting(workshop.QUIZ_SETTING) or []
        finally:
            if not self.open_ws:
                sw.close()

    # ---- the table ----------------------------------------------------------------------------------------------
    def columns(self, extra_exercises: dict[str, dict] | None = None) -> list[dict]:
        from cvlab.quiz import SKILLS
        cat = lessons_mod.catalogue(self.source)
        cols = [{"id": "seat", "label": "Seat", "group": "", "title": "the learner's seat"},
                {"id": "laptop", "label": "Laptop", "group": "", "title": "the joined laptop's reporter: "
                 "connected, offline (not heard from for a minute) or not joined"},
                {"id": "lesson", "label": "Lesson", "group": "", "title": "furthest lesson reached, and its "
                 "furthest code cell run"},
                {"id": "active", "label": "Last progress", "group": "", "title": "minutes since the last lesson "
                 "cell, check, quiz answer or iteration"}]
        known = set()
        for lesson in cat.lessons:
            for ex in lesson.exercises:
                known.add(ex.id)
                cols.append({"id": f"ex:{ex.id}", "label": str(ex.number), "group": f"{lesson.number}",
                             "group_title": lesson.title, "title": f"{lesson.number} ex {ex.number}: {ex.title}"})
        for ex_id, e in sorted((extra_exercises or {}).items()):
            if ex_id not in known:  # reported by another version of the course
                cols.append({"id": f"ex:{ex_id}", "label": ex_id, "group": str(e.get("lesson") or "?"),
                             "group_title": "exercise not in this server's course", "title": ex_id})
        for key, skill in SKILLS.items():
            cols.append({"id": f"quiz:{key}", "label": key, "group": "Quiz", "group_title": "quiz skills: right "
                         "the last time / questions answered", "title": skill.line})
        cols += [{"id": "best", "label": "Best AP", "group": "", "title": "the highest AP (mAP for detection) "
                  "of any iteration, at the 50 % threshold"},
                 {"id": "published", "label": "Published", "group": "", "title": "published iterations "
                  "(project/name)"},
                 {"id": "alerts", "label": "Needs help", "group": "", "title": "no progress for a while, or an "
                  "exercise failing again and again"}]
        return cols

    def row(self, name: str, *, now: datetime, idle_minutes: int, failures: int, contact: str | None,
            state: SeatState, cat) -> dict:
        cells: dict[str, dict] = {"seat": _cell(name)}
        heard = parse_time(contact) if contact else None
        if heard is None:
            cells["laptop"] = _cell("not joined", state="none", title="no laptop has reported for this seat")
        elif (now - heard).total_seconds() > OFFLINE_S:
            cells["laptop"] = _cell("offline", state="warn", title=f"last heard from {heard.isoformat()}")
        else:
            cells["laptop"] = _cell("connected", state="ok", title=f"last heard from {heard.isoformat()}")
        if state.lessons:
            number = max(state.lessons)
            entry = state.lessons[number]
            lesson = cat.lesson(number)
            where = f"{number} · {entry['cell']}/{entry['cells']}" if entry.get("cells") else number
            cells["lesson"] = _cell(where, title=(lesson.title if lesson else number) + f", code cell {entry['cell']}")
        else:
            cells["lesson"] = _cell("", state="none")
        alerts = []
        for ex_id, e in state.exercises.items():
            label = f"{e.get('lesson')} ex {e.get('number')}"
            if e["passed"]:
                tries = f" after {e['failed']} failed checks" if e["failed"] else ""
                cells[f"ex:{ex_id}"] = _cell("✓", "passed", "ok", f"{label} passed{tries}")
            else:
                n = e["failed_since_pass"]
                cells[f"ex:{ex_id}"] = _cell("✗" + (str(n) if n > 1 else ""), f"failed x{n}", "fail",
                                             f"{label}: {n} failed checks; last: {e.get('error') or '?'}")
                if n >= failures:
                    alerts.append(f"stuck on {label} ({n} failed checks)")
        for skill, (right, answered) in quiz_by_skill(state.quiz_answers()).items():
            cells[f"quiz:{skill}"] = _cell(f"{right}/{answered}", round(right / answered, 3),
                                           "ok" if right == answered else "warn" if right * 2 < answered else "",
                                           f"{right} of {answered} questions right the last time")
        iterations = list(state.iterations.values())
        seat_its, seat_last, _ = self._seat_side(name)
        iterations += seat_its
        scored = [(it["metrics"]["average_precision"], it) for it in iterations
                  if isinstance((it.get("metrics") or {}).get("average_precision"), (int, float))]
        if scored:
            ap, best = max(scored, key=lambda x: x[0])
            cells["best"] = _cell(f"{ap:.1%}", round(ap, 4), "",
                                  f"{best['project']} · {best['name']} ({best['source']})")
        published = sorted({f"{it['project']}/{it['publish_name']}" for it in iterations if it.get("publish_name")})
        cells["published"] = _cell(", ".join(published), "; ".join(published))
        last = max(filter(None, (state.last_progress, seat_last)), default=None)
        if last is None:
            cells["active"] = _cell("", state="none", title="no progress yet")
        else:
            idle = max(0, _minutes(now - last))
            cells["active"] = _cell(f"{idle} min ago" if idle else "now", idle,
                                    "warn" if idle >= idle_minutes else "", last.isoformat())
            if idle >= idle_minutes:
                alerts.insert(0, f"no progress for {idle} min")
        cells["alerts"] = _cell("; ".join(alerts), state="fail" if alerts else "")
        return {"seat": name, "cells": cells, "alerts": alerts}

    def table(self, *, idle_minutes: int = IDLE_MINUTES, failures: int = FAILURES, now: datetime | None = None,
              details: bool = False) -> dict:
        from cvlab import workshop
        self.refresh()
        now = now or utcnow()
        cat = lessons_mod.catalogue(self.source)
        contacts = self.store.contacts()
        seats = [s.name for s in workshop.get_seats(self.ws)]
        with self._lock:
            states = {name: self._states.get(name) or SeatState() for name in seats}
        extra = {k: v for st in states.values() for k, v in st.exercises.items()}
        rows = []
        for name in seats:
            row = self.row(name, now=now, idle_minutes=idle_minutes, failures=failures,
                           contact=contacts.get(name), state=states[name], cat=cat)
            if details:
                row["details"] = self.details(name, states[name])
            rows.append(row)
        return {"generated": now.isoformat(timespec="seconds"), "idle_minutes": idle_minutes, "failures": failures,
                "columns": self.columns(extra), "rows": rows}

    def details(self, name: str, state: SeatState | None = None) -> dict:
        """Everything behind one seat's row: lessons, exercises with their last message, quiz answers, exams,
        iterations (laptop and seat) with metrics."""
        state = state or self.state(name)
        seat_its, _, submitted = self._seat_side(name)
        answers = [{k: v for k, v in r.items() if k != "at_dt"} for r in state.quiz_answers()]
        return {"seat": name, "lessons": state.lessons, "exercises": state.exercises, "quiz": answers,
                "quiz_by_skill": {k: {"right": r, "answered": n} for k, (r, n) in
                                  quiz_by_skill(state.quiz_answers()).items()},
                "exams": state.exams, "iterations": list(state.iterations.values()) + seat_its,
                "submitted_quiz_scores": submitted}


def progress(ws, details: bool = False, **table_args) -> dict:
    """The Class table of an instructor workspace, read once (``cvlab workshop progress``; the server keeps one
    ``Board`` and adds its training queue)."""
    board = Board(ws)
    try:
        return board.table(details=details, **table_args)
    finally:
        board.store.close()


# ---- rendering ------------------------------------------------------------------------------------------------------
def to_csv(table: dict) -> str:
    """One header row (``03 ex 1`` for exercises, ``quiz choose`` for skills), one row per seat, plain values."""
    cols = table["columns"]
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([(f"{c['group']} ex {c['label']}" if c["id"].startswith("ex:") else
                 f"quiz {c['label']}" if c["id"].startswith("quiz:") else c["label"]) for c in cols])
    for row in table["rows"]:
        w.writerow([row["cells"].get(c["id"], {}).get("value", "") for c in cols])
    return out.getvalue()


def to_text(table: dict, width: int | None = None) -> str:
    """A terminal table: a header line of groups (lessons, Quiz) over the column labels, one line per seat, and
    the alerts listed underneath."""
    cols = table["columns"]
    texts = [[str(row["cells"].get(c["id"], {}).get("text", "")) for c in cols] for row in table["rows"]]
    labels = [c["label"] for c in cols]
    keep = [i for i, c in enumerate(cols) if c["id"] != "alerts"]
    widths = {i: max([len(labels[i])] + [len(t[i]) for t in texts]) for i in keep}
    groups, line, prev = [], [], None
    for i in keep:
        g = cols[i]["group"]
        groups.append((g if g != prev else "").ljust(widths[i]))
        prev = g
    for i in keep:
        line.append(labels[i].ljust(widths[i]))
    lines = ["  ".join(groups).rstrip(), "  ".join(line).rstrip()]
    lines.append("  ".join("-" * widths[i] for i in keep))
    for t in texts:
        lines.append("  ".join(t[i].ljust(widths[i]) for i in keep).rstrip())
    alerts = [(row["seat"], a) for row in table["rows"] for a in row["alerts"]]
    lines.append("")
    if alerts:
        lines.append(f"Needs help (no progress for {table['idle_minutes']} min, or {table['failures']} failed "
                     "checks of one exercise):")
        lines += [f"  {seat}: {a}" for seat, a in alerts]
    else:
        lines.append("Nobody needs help right now.")
    text = "\n".join(lines)
    return text if width is None else "\n".join(ln[:width] for ln in text.splitlines())


__all__ = ["Board", "FAILURES", "IDLE_MINUTES", "SeatState", "progress", "quiz_by_skill", "to_csv", "to_text"]

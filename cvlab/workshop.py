"""Workshop mode: one endpoint for a classroom, one isolated seat per learner.

Each seat is its own small workspace (``<workspace>/seats/<name>/``) with its own training key, prediction key and
prediction resource id, as if every learner had their own Azure resource: a learner's keys only ever reach their
own seat, so no route can see, change or predict with another learner's projects, and per-resource limits (project
count, names, quotas) apply per learner. The seat list lives in the instructor's workspace as the JSON setting
``workshop.seats``; the instructor's own keys (the workspace's service keys) see every seat's progress.

Training requests from every seat go through one :class:`TrainingQueue`, round robin between seats (bounded
concurrency, 1 at a time on 2 cores): waiting iterations show ``status == "Queued"`` and ``queue_position`` (1 =
next).
"""
from __future__ import annotations

import hmac
import html
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cvlab import rules
from cvlab.errors import CvlabError

SEATS_SETTING = "workshop.seats"
QUIZ_SETTING = "workshop.quiz_submissions"
SEATS_DIR = "seats"
MAX_SEATS = 200
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


@dataclass(frozen=True)
class Seat:
    name: str
    training_key: str
    prediction_key: str
    prediction_resource_id: str

    def __repr__(self) -> str:  # keys never end up in logs or tracebacks
        return f"Seat({self.name!r}, training_key='***', prediction_key='***')"


def _new_seat(name: str) -> Seat:
    return Seat(name, secrets.token_hex(16), secrets.token_hex(16),
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/cvlab-workshop/providers/"
                f"Microsoft.CognitiveServices/accounts/cvlab-{name}-prediction")


def seat_name(i: int) -> str:
    return f"seat-{i:02d}"


# ---- seats ------------------------------------------------------------------------------------------------------
def get_seats(ws) -> list[Seat]:
    raw = ws.get_setting(SEATS_SETTING) or []
    return [Seat(**s) for s in raw]


def is_workshop(ws) -> bool:
    return bool(ws.get_setting(SEATS_SETTING))


def create_seats(ws, n: int) -> list[Seat]:
    """Make sure seats ``seat-01 .. seat-NN`` exist (existing seats keep their keys and projects)."""
    if not isinstance(n, int) or not 1 <= n <= MAX_SEATS:
        raise CvlabError("BadRequestInvalid", f"A workshop has 1 to {MAX_SEATS} seats (got {n!r}).")
    seats = {s.name: s for s in get_seats(ws)}
    for i in range(1, n + 1):
        seats.setdefault(seat_name(i), _new_seat(seat_name(i)))
    ordered = sorted(seats.values(), key=lambda s: s.name)
    ws.set_setting(SEATS_SETTING, [asdict(s) for s in ordered])
    for s in ordered:
        open_seat(ws, s.name).close()  # create the folder now, so a handout never points at nothing
    return ordered


def get_seat(ws, name: str) -> Seat:
    for s in get_seats(ws):
        if s.name == name:
            return s
    names = ", ".join(s.name for s in get_seats(ws)) or "none: create them with `cvlab workshop create --seats N`"
    raise CvlabError("NotFound", f"No workshop seat {name!r}. Seats: {names}.")


def seat_path(ws, name: str) -> Path:
    if not _NAME.match(name):
        raise CvlabError("BadRequestInvalid", f"{name!r} is not a seat name (lowercase letters, digits, '-').")
    return Path(ws.path) / SEATS_DIR / name


def open_seat(ws, name: str):
    """The seat's own Workspace (same pricing tier as the instructor's)."""
    from cvlab.workspace import Workspace
    sw = Workspace(seat_path(ws, name))
    if sw.tier != ws.tier:
        sw.set_tier(ws.tier)
    return sw


def match_key(seats: list[Seat], api: str, presented: list[str]) -> Seat | None:
    """The seat whose ``api`` key ("training"|"prediction") was presented. Every seat's key is compared in
    constant time, without stopping at the first match, so timing says nothing about which keys exist."""
    found = None
    for s in seats:
        want = (s.training_key if api == "training" else s.prediction_key).encode()
        hit = False
        for p in presented:
            hit |= hmac.compare_digest(p.strip().encode(), want)
        if hit and found is None:
            found = s
    return found


def reset_seat(ws, name: str, *, new_keys: bool = False) -> dict:
    """Return one seat to a clean state (projects, iterations, predictions, exports, quiz scores); other seats
    are not touched. Trainings still running or queued for the seat are cancelled first."""
    from cvlab import training
    seat = get_seat(ws, name)
    sw = open_seat(ws, name)
    try:
        removed = 0
        for p in sw.get_projects():
            for it in sw.get_iterations(p.id):
                if it.status in ("Training", "Queued"):
                    if isinstance(training.admission, TrainingQueue):
                        training.admission.cancel(it.id)  # leaves the line at once instead of waiting its turn
                    training.cancel_training(sw, it.id)
                    training.wait(sw, p.id, it.id, timeout=60)
                if it.publish_name:
                    sw.unpublish_iteration(p.id, it.id)
            sw.delete_project(p.id)
            removed += 1
        sw.set_setting(QUIZ_SETTING, [])
        from cvlab import quiz
        quiz.reset_progress(sw)
    finally:
        sw.close()
    if new_keys:
        seats = [(_new_seat(s.name) if s.name == seat.name else s) for s in get_seats(ws)]
        ws.set_setting(SEATS_SETTING, [asdict(s) for s in seats])
    return {"seat": name, "projects_removed": removed, "new_keys": new_keys}


# ---- quiz scores learners choose to submit ----------------------------------------------------------------------
def submit_quiz(seat_ws, body: dict) -> dict:
    """Store a quiz score a learner chose to share: ``{"quiz": str, "score": 0..1, "answered": int,
    "correct": int}`` (``score`` may be omitted when answered/correct are given)."""
    if not isinstance(body, dict):
        raise CvlabError("BadRequestInvalid", "Send a JSON object: {\"quiz\": \"...\", \"answered\": n, \"correct\": k}.")
    quiz_id = body.get("quiz")
    if not isinstance(quiz_id, str) or not quiz_id.strip() or len(quiz_id) > 100:
        raise CvlabError("BadRequestInvalid", "'quiz' names the quiz or topic (1-100 characters).")
    rules.check_text(quiz_id, "quiz name", "BadRequestInvalid")
    answered, correct = body.get("answered"), body.get("correct")
    for k, v in (("answered", answered), ("correct", correct)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise CvlabError("BadRequestInvalid", f"'{k}' is a whole number >= 0 (got {v!r}).")
    if answered is not None and correct is not None and correct > answered:
        raise CvlabError("BadRequestInvalid", "'correct' cannot exceed 'answered'.")
    score = body.get("score")
    if score is None and answered:
        score = (correct or 0) / answered
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not 0.0 <= float(score) <= 1.0:
        raise CvlabError("BadRequestInvalid", "'score' is a fraction between 0 and 1 (or send answered/correct).")
    entry = {"quiz": quiz_id.strip(), "score": round(float(score), 4), "answered": answered, "correct": correct,
             "submitted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    subs = [s for s in (seat_ws.get_setting(QUIZ_SETTING) or []) if s.get("quiz") != entry["quiz"]]
    seat_ws.set_setting(QUIZ_SETTING, subs + [entry])
    return entry


def quiz_payload(ws, topic: str | None = None) -> dict:
    """What ``submit_quiz`` wants, from the learner's own quiz progress (``cvlab.quiz``)."""
    from cvlab import quiz
    s = quiz.summary(ws, topic)
    if not s.answered:
        raise CvlabError("BadRequestInvalid", "No quiz answers in this workspace yet: take a quiz first (`cvlab quiz` "
                         "or a notebook's quiz cell), then submit.")
    return {"quiz": topic or "all", "answered": s.answered, "correct": s.correct_last}


def submit_quiz_scores(endpoint: str, training_key: str, ws=None, topic: str | None = None) -> dict:
    """Send your quiz score to the instructor (only when you choose to): POST /cvlab/workshop/quiz."""
    import requests

    from cvlab.workspace import open_workspace
    ws = ws or open_workspace()
    r = requests.post(f"{endpoint.rstrip('/')}/cvlab/workshop/quiz", json=quiz_payload(ws, topic),
                      headers={"Training-Key": training_key}, timeout=30)
    if r.status_code != 200:
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        raise CvlabError(body.get("code", "BadRequest"), body.get("message", f"HTTP {r.status_code}"))
    return r.json()


# ---- instructor's view ------------------------------------------------------------------------------------------
def _metrics(sw, project_id: str, iteration_id: str) -> dict:
    from cvlab.metrics import json_number
    from cvlab.performance import get_iteration_performance
    try:
        perf = get_iteration_performance(sw, project_id, iteration_id)
    except CvlabError as e:
        return {"error": e.message}
    return {"precision": json_number(perf.precision), "recall": json_number(perf.recall),
            "average_precision": json_number(perf.average_precision)}


def seat_progress(sw) -> dict:
    projects = []
    for p in sw.get_projects():
        its = []
        for it in sw.get_iterations(p.id):
            entry = {"id": it.id, "name": it.name, "status": it.status, "queue_position": it.queue_position,
                     "training_type": it.training_type, "published_as": it.publish_name,
                     "trained_at": it.trained_at.isoformat() if it.trained_at else None}
            if it.status == "Completed":
                entry["metrics"] = _metrics(sw, p.id, it.id)
            its.append(entry)
        projects.append({"id": p.id, "name": p.name, "project_type": p.project_type,
                         "images": sw.get_image_count(p.id), "tags": len(sw.get_tags(p.id)), "iterations": its})
    return {"projects": projects, "quiz": sw.get_setting(QUIZ_SETTING) or []}


def progress(ws, open_ws=None, queue: "TrainingQueue | None" = None) -> dict:
    """Every seat's projects, iterations (status, queue position, metrics) and submitted quiz scores.

    ``open_ws(name)`` gives a seat's Workspace (the service passes its cached ones)."""
    seats = []
    for s in get_seats(ws):
        if open_ws is not None:
            seats.append({"seat": s.name, **seat_progress(open_ws(s.name))})
            continue
        sw = open_seat(ws, s.name)
        try:
            seats.append({"seat": s.name, **seat_progress(sw)})
        finally:
            sw.close()
    out = {"seats": seats}
    if queue is not None:
        out["queue"] = queue.snapshot()
    return out


# ---- handout ----------------------------------------------------------------------------------------------------
_SNIPPET = '''from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
from msrest.authentication import ApiKeyCredentials

ENDPOINT = "{endpoint}"
trainer = CustomVisionTrainingClient(ENDPOINT, ApiKeyCredentials(in_headers={{"Training-key": "{tk}"}}))
predictor = CustomVisionPredictionClient(ENDPOINT, ApiKeyCredentials(in_headers={{"Prediction-key": "{pk}"}}))

project = trainer.create_project("My first project")
print([d.name for d in trainer.get_domains()])
# ... add tags and images, then: iteration = trainer.train_project(project.id)
# publish with prediction resource id "{rid}" and call predictor.classify_image(...)'''


def _seat_page(seat: Seat, endpoint: str) -> dict:
    return {"seat": seat.name, "endpoint": endpoint, "training_key": seat.training_key,
            "prediction_key": seat.prediction_key, "prediction_resource_id": seat.prediction_resource_id,
            "snippet": _SNIPPET.format(endpoint=endpoint, tk=seat.training_key, pk=seat.prediction_key,
                                       rid=seat.prediction_resource_id)}


_STEPS = ["Open the notebooks (`cvlab lab`) or your own Python with `azure-cognitiveservices-vision-customvision`.",
          "Use the endpoint and keys below: they reach only your own projects.",
          "Training waits its turn when the room is busy: the iteration shows status `Queued`, then `Training`.",
          "Keep this page private: anyone with your training key can change your projects."]


def handout(ws, endpoint: str, fmt: str = "md", seats: list[str] | None = None) -> str:
    """One page per seat (endpoint, keys, first steps with the Azure SDK), as Markdown or HTML."""
    chosen = [get_seat(ws, n) for n in seats] if seats else get_seats(ws)
    if not chosen:
        raise CvlabError("NotFound", "This workspace has no workshop seats: run `cvlab workshop create --seats N`.")
    pages = [_seat_page(s, endpoint.rstrip("/")) for s in chosen]
    if fmt == "md":
        out = []
        for p in pages:
            out.append(f"# cvlab workshop — {p['seat']}\n\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(_STEPS, 1))
                       + f"\n\n| Setting | Value |\n|---|---|\n| Endpoint | `{p['endpoint']}` |\n"
                       f"| Training key | `{p['training_key']}` |\n| Prediction key | `{p['prediction_key']}` |\n"
                       f"| Prediction resource id | `{p['prediction_resource_id']}` |\n\n"
                       f"```python\n{p['snippet']}\n```\n")
        return "\n\\pagebreak\n\n".join(out)
    if fmt == "html":
        e = html.escape
        body = []
        for p in pages:
            steps = "".join(f"<li>{e(s)}</li>" for s in _STEPS)
            rows = "".join(f"<tr><th>{e(k)}</th><td><code>{e(p[v])}</code></td></tr>" for k, v in (
                ("Endpoint", "endpoint"), ("Training key", "training_key"), ("Prediction key", "prediction_key"),
                ("Prediction resource id", "prediction_resource_id")))
            body.append(f'<section class="seat"><h1>cvlab workshop — {e(p["seat"])}</h1><ol>{steps}</ol>'
                        f"<table>{rows}</table><pre><code>{e(p['snippet'])}</code></pre></section>")
        return ("<!doctype html><html><head><meta charset='utf-8'><title>cvlab workshop handout</title><style>"
                "section.seat{page-break-after:always;font-family:sans-serif}th{text-align:left;padding-right:1em}"
                "pre{background:#f4f4f4;padding:1em}</style></head><body>" + "".join(body) + "</body></html>")
    raise CvlabError("BadRequestInvalid", f"Handout format {fmt!r}: use 'md' or 'html'.")


# ---- fair training queue ----------------------------------------------------------------------------------------
class _Ticket:
    def __init__(self, queue: "TrainingQueue", ws, label: str, project_id: str, iteration_id: str):
        self.queue, self.ws, self.label = queue, ws, label
        self.project_id, self.iteration_id = project_id, iteration_id
        self.enqueued = time.monotonic()
        self.admitted_at: float | None = None
        self.cancelled = False

    def __enter__(self):
        self.queue._wait_turn(self)
        return self

    def __exit__(self, *exc):
        self.queue._release(self)
        return False


class TrainingQueue:
    """Fair admission for training with at most ``slots`` running at once: round robin between seats.

    ``cvlab.training`` asks ``enqueue(ws, project_id, iteration_id)`` right after creating an iteration (None for
    workspaces not registered here) and trains inside the returned ticket's ``with`` block. The next to run is the
    oldest waiting iteration of the seat that was served longest ago (a seat never served first), so a seat with
    three iterations waiting holds the line for one turn, not three. Waiting iterations are stored as ``Queued``
    with their 1-based ``queue_position`` in that order; nobody is refused because the room is busy.
    """

    def __init__(self, slots: int = 1):
        if slots < 1:
            raise ValueError("slots must be >= 1")
        self.slots = slots
        self._cond = threading.Condition()
        self._waiting: list[_Ticket] = []
        self._running: list[_Ticket] = []
        self._labels: dict[str, str] = {}
        self._turns = 0                       # admissions so far
        self._last_turn: dict[str, int] = {}  # seat label -> the admission number it was last served at
        self.waits: list[float] = []  # seconds each admitted training waited

    def register(self, ws, label: str) -> None:
        with self._cond:
            self._labels[str(Path(ws.path))] = label

    def enqueue(self, ws, project_id: str, iteration_id: str) -> _Ticket | None:
        label = self._labels.get(str(Path(ws.path)))
        if label is None:
            return None
        t = _Ticket(self, ws, label, project_id, iteration_id)
        with self._cond:
            self._waiting.append(t)
            self._advance()
        return t

    def _line(self) -> list[_Ticket]:
        """The waiting tickets in the order they will run (caller holds the lock): round robin between seats,
        each seat's own tickets first in, first out."""
        last = dict(self._last_turn)
        turn, left, line = self._turns, list(self._waiting), []
        while left:
            nxt = min(range(len(left)), key=lambda i: (last.get(left[i].label, -1), i))
            t = left.pop(nxt)
            last[t.label] = turn
            turn += 1
            line.append(t)
        return line

    def _advance(self) -> None:
        """Admit in round-robin order while slots are free, then renumber the line (caller holds the lock)."""
        while self._waiting and len(self._running) < self.slots:
            t = self._line()[0]
            self._waiting.remove(t)
            self._last_turn[t.label] = self._turns
            self._turns += 1
            t.admitted_at = time.monotonic()
            self.waits.append(t.admitted_at - t.enqueued)
            self._running.append(t)
            self._store(t, status="Training", queue_position=None)
        for pos, t in enumerate(self._line(), 1):
            self._store(t, status="Queued", queue_position=pos)
        self._cond.notify_all()

    @staticmethod
    def _store(t: _Ticket, **fields) -> None:
        try:
            it = t.ws.get_iteration(t.project_id, t.iteration_id)
            if it.status in ("Training", "Queued") and (it.status, it.queue_position) != (
                    fields["status"], fields["queue_position"]):
                t.ws.update_iteration(t.project_id, t.iteration_id, **fields)
        except CvlabError:
            pass  # the learner deleted the project meanwhile: its ticket just passes through

    def _wait_turn(self, t: _Ticket) -> None:
        with self._cond:
            while t not in self._running:
                if t.cancelled:
                    raise InterruptedError("cancelled while queued")  # training marks it Failed: Cancelled
                self._cond.wait()

    def cancel(self, iteration_id: str) -> bool:
        """Take a waiting iteration out of the line (its training then ends Cancelled without running)."""
        with self._cond:
            for t in self._waiting:
                if t.iteration_id == iteration_id:
                    t.cancelled = True
                    self._waiting.remove(t)
                    self._advance()
                    return True
        return False

    def _release(self, t: _Ticket) -> None:
        with self._cond:
            if t in self._running:
                self._running.remove(t)
            elif t in self._waiting:
                self._waiting.remove(t)
            self._advance()

    def snapshot(self) -> dict:
        now = time.monotonic()
        with self._cond:
            return {"slots": self.slots,
                    "running": [{"seat": t.label, "iteration_id": t.iteration_id,
                                 "running_s": round(now - (t.admitted_at or now), 2)} for t in self._running],
                    "waiting": [{"seat": t.label, "iteration_id": t.iteration_id, "queue_position": i,
                                 "waiting_s": round(now - t.enqueued, 2)} for i, t in enumerate(self._line(), 1)],
                    "admitted": len(self.waits),
                    "longest_wait_s": round(max(self.waits + [now - t.enqueued for t in self._waiting],
                                                default=0.0), 2)}

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
from contextlib import closing
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


def rotate_keys(ws, name: str) -> Seat:
    """Issue new keys for one seat (projects stay): the old keys stop working at the next request, so a leaked
    handout can be withdrawn. The learner joins again with the new training key."""
    seat = get_seat(ws, name)
    fresh = _new_seat(seat.name)
    fresh = Seat(seat.name, fresh.training_key, fresh.prediction_key, seat.prediction_resource_id)
    ws.set_setting(SEATS_SETTING, [asdict(fresh if s.name == seat.name else s) for s in get_seats(ws)])
    return fresh


def reset_plan(ws, name: str) -> dict:
    """What ``reset_seat`` would delete for one seat, without deleting anything (``cvlab workshop reset`` shows
    it and asks first)."""
    from cvlab import quiz
    from cvlab.classroom.store import ClassStore
    get_seat(ws, name)
    sw = open_seat(ws, name)
    try:
        projects = []
        for p in sw.get_projects():
            its = sw.get_iterations(p.id)
            projects.append({"name": p.name, "images": sw.get_image_count(p.id), "iterations": len(its),
                             "published": [it.publish_name for it in its if it.publish_name],
                             "training": sum(it.status in ("Training", "Queued") for it in its)})
        submitted = len(sw.get_setting(QUIZ_SETTING) or [])
        answers = len(quiz.answers(sw))
    finally:
        sw.close()
    with closing(ClassStore(ws)) as store:
        events = store.count(name)
    return {"seat": name, "projects": projects, "submitted_quiz_scores": submitted, "seat_quiz_answers": answers,
            "reported_events": events}


def describe_plan(plan: dict) -> str:
    """One seat's reset plan in words."""
    lines = [f"{plan['seat']}:"]
    for p in plan["projects"]:
        extra = f", published as {', '.join(p['published'])}" if p["published"] else ""
        busy = f", {p['training']} training now (cancelled)" if p["training"] else ""
        lines.append(f"  project {p['name']!r}: {p['images']} images, {p['iterations']} iterations{extra}{busy}")
    if not plan["projects"]:
        lines.append("  no projects")
    lines.append(f"  progress the learner's laptop reported: {plan['reported_events']} events (lessons, exercise "
                 f"checks, quiz answers, iterations); quiz scores submitted: {plan['submitted_quiz_scores']}")
    return "\n".join(lines)


def reset_seat(ws, name: str, *, new_keys: bool = False) -> dict:
    """Return one seat to a clean state (projects, iterations, predictions, exports, quiz scores, the progress
    its laptop reported); other seats are not touched. Trainings still running or queued for the seat are
    cancelled first. ``new_keys`` also rotates the seat's keys (``rotate_keys``)."""
    from cvlab import training
    from cvlab.classroom.store import ClassStore
    get_seat(ws, name)
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
    with closing(ClassStore(ws)) as store:
        events = store.delete_seat(name)
    if new_keys:
        rotate_keys(ws, name)
    return {"seat": name, "projects_removed": removed, "events_removed": events, "new_keys": new_keys}


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


# ---- where the room reaches the server --------------------------------------------------------------------------
ENDPOINT_SETTING = "workshop.endpoint"


def room_addresses() -> list[str]:
    """This machine's IPv4 addresses other machines can reach (no loopback, no link-local), best first."""
    import ipaddress

    import psutil
    found = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family.name != "AF_INET":
                continue
            ip = ipaddress.ip_address(a.address)
            if not (ip.is_loopback or ip.is_link_local):
                found.append(a.address)
    return sorted(set(found), key=lambda a: (not ipaddress.ip_address(a).is_private, a))


def is_loopback(host: str | None) -> bool:
    """Whether only this machine reaches ``host`` (127.0.0.0/8, ::1, localhost)."""
    import ipaddress
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


def listening(host: str, port: int) -> dict:
    """What learners can use to reach a server bound to ``host:port``: the URL for the handout, whether it is
    loopback only, and every address of this machine when bound to all of them."""
    if is_loopback(host):
        return {"url": f"http://127.0.0.1:{port}", "loopback": True, "urls": [f"http://127.0.0.1:{port}"]}
    if host in ("0.0.0.0", "::", ""):
        urls = [f"http://{a}:{port}" for a in room_addresses()]
        return {"url": urls[0] if urls else f"http://127.0.0.1:{port}", "loopback": not urls,
                "urls": urls or [f"http://127.0.0.1:{port}"]}
    shown = f"[{host}]" if ":" in host else host
    return {"url": f"http://{shown}:{port}", "loopback": False, "urls": [f"http://{shown}:{port}"]}


def record_endpoint(ws, host: str, port: int) -> dict:
    """Remember where the server really listens, so ``handout`` prints that address (not a guess)."""
    info = {**listening(host, port), "host": host, "port": port}
    ws.set_setting(ENDPOINT_SETTING, info)
    return info


def room_notice(info: dict, command: str = "cvlab workshop serve") -> list[str]:
    """What ``cvlab serve --workshop`` / ``cvlab workshop serve`` print about who can reach them."""
    if info["loopback"]:
        return [f"NOTE: bound to {info.get('host', '127.0.0.1')} only: learners' laptops cannot reach "
                f"{info['url']}.",
                f"      To open it to the room: {command} --host 0.0.0.0 --port {info.get('port', 8080)} "
                "(then print the handout again)."]
    return [f"Learners reach this server at {' or '.join(info['urls'])}."]


def recorded_endpoint(ws) -> str | None:
    info = ws.get_setting(ENDPOINT_SETTING)
    return info.get("url") if isinstance(info, dict) else None


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


def join_command(endpoint: str, seat: Seat) -> str:
    """The one line a learner runs: the course, joined to their seat."""
    return f"cvlab lab --join {endpoint} --key {seat.training_key}"


def _seat_page(seat: Seat, endpoint: str) -> dict:
    return {"seat": seat.name, "endpoint": endpoint, "training_key": seat.training_key,
            "prediction_key": seat.prediction_key, "prediction_resource_id": seat.prediction_resource_id,
            "join": join_command(endpoint, seat),
            "snippet": _SNIPPET.format(endpoint=endpoint, tk=seat.training_key, pk=seat.prediction_key,
                                       rid=seat.prediction_resource_id)}


_STEPS = ["Join the workshop and open the course: run the command below in a terminal (or save the env file "
          "and run `cvlab lab --join seat-NN.env`). Your lessons, exercise checks, quiz answers and iterations "
          "are reported to your instructor; training runs on your own laptop.",
          "For the SDK labs, use the endpoint and keys below: they reach only your own projects.",
          "Training on the shared endpoint waits its turn when the room is busy: the iteration shows status "
          "`Queued`, then `Training`.",
          "Keep this page private: anyone with your training key can change your projects."]
LOOPBACK_WARNING = ("This handout points at {url}, which only the instructor's own machine reaches. Start the "
                    "server with `cvlab workshop serve --host 0.0.0.0` and print the handout again.")


def handout_endpoint(ws, endpoint: str | None = None) -> str:
    """The address to print: the one given, else the one the server recorded when it bound its socket."""
    url = endpoint or recorded_endpoint(ws)
    if not url:
        raise CvlabError("NotFound", "No server address yet: start it first (`cvlab workshop serve --host 0.0.0.0`, "
                         "it records where it listens) or pass --endpoint http://ADDRESS:PORT.")
    from cvlab.classroom.learner import check_endpoint
    return check_endpoint(url)


def handout(ws, endpoint: str | None = None, fmt: str = "md", seats: list[str] | None = None) -> str:
    """One page per seat (the join command, endpoint, keys, first steps with the Azure SDK), as Markdown, HTML,
    or JSON (for JupyterHub: ``cvlab.classroom.hub``; the env files are ``cvlab.cli.workshop.env_file``).
    ``endpoint`` defaults to the address the running server recorded."""
    from urllib.parse import urlsplit
    chosen = [get_seat(ws, n) for n in seats] if seats else get_seats(ws)
    if not chosen:
        raise CvlabError("NotFound", "This workspace has no workshop seats: run `cvlab workshop create --seats N`.")
    if fmt not in ("md", "html", "json"):
        raise CvlabError("BadRequestInvalid", f"Handout format {fmt!r}: use 'md', 'html' or 'json'.")
    endpoint = handout_endpoint(ws, endpoint)
    warning = LOOPBACK_WARNING.format(url=endpoint) if is_loopback(urlsplit(endpoint).hostname) else None
    pages = [_seat_page(s, endpoint) for s in chosen]
    if fmt == "json":
        import json
        return json.dumps([{k: v for k, v in p.items() if k != "snippet"} for p in pages], indent=1)
    if fmt == "md":
        out = []
        for p in pages:
            out.append(f"# cvlab workshop — {p['seat']}\n\n" + (f"> **{warning}**\n\n" if warning else "")
                       + "\n".join(f"{i}. {s}" for i, s in enumerate(_STEPS, 1))
                       + f"\n\n```\n{p['join']}\n```\n\n"
                       f"| Setting | Value |\n|---|---|\n| Endpoint | `{p['endpoint']}` |\n"
                       f"| Training key | `{p['training_key']}` |\n| Prediction key | `{p['prediction_key']}` |\n"
                       f"| Prediction resource id | `{p['prediction_resource_id']}` |\n\n"
                       f"```python\n{p['snippet']}\n```\n")
        return "\n\\pagebreak\n\n".join(out)
    e = html.escape
    body = []
    for p in pages:
        steps = "".join(f"<li>{e(s)}</li>" for s in _STEPS)
        rows = "".join(f"<tr><th>{e(k)}</th><td><code>{e(p[v])}</code></td></tr>" for k, v in (
            ("Endpoint", "endpoint"), ("Training key", "training_key"), ("Prediction key", "prediction_key"),
            ("Prediction resource id", "prediction_resource_id")))
        note = f'<p class="warning">{e(warning)}</p>' if warning else ""
        body.append(f'<section class="seat"><h1>cvlab workshop — {e(p["seat"])}</h1>{note}<ol>{steps}</ol>'
                    f"<pre class='join'><code>{e(p['join'])}</code></pre>"
                    f"<table>{rows}</table><pre><code>{e(p['snippet'])}</code></pre></section>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>cvlab workshop handout</title><style>"
            "section.seat{page-break-after:always;font-family:sans-serif}th{text-align:left;padding-right:1em}"
            "pre{background:#f4f4f4;padding:1em;white-space:pre-wrap}.warning{color:#a00;font-weight:bold}"
            "</style></head><body>" + "".join(body) + "</body></html>")


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

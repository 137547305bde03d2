"""Workshop mode in the service (the ``cvlab workshop`` command is ``cvlab.cli.workshop``).

``install(app, ctx)`` (called by ``create_app`` when the workspace has seats) gives every seat its own
``ServiceContext`` on its own seat workspace; the gateway hands a request to that context when a seat's key is
presented (``SeatDirectory.admit``), so every route family is isolated without knowing about seats. A seat's blob
and export URLs carry ``/cvlab/seats/<seat>`` (the request's root path), which ``SeatPaths`` maps back. Training
goes through one fair ``cvlab.workshop.TrainingQueue``.

The ``/cvlab/workshop`` routes: the Class table (``progress``, instructor's key: JSON or CSV), one seat's details,
a learner's progress events (``events``, seat key, ``cvlab.classroom.store``), ``seat`` (which seat a key opens),
reset and key rotation.
"""
from __future__ import annotations

import re
import threading

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cvlab import workshop as core
from cvlab.classroom import board
from cvlab.classroom.store import ClassStore
from cvlab.errors import CvlabError

from .auth import ServiceKeys, key_ok, presented_keys
from .context import ServiceContext
from .quotas import RateLimiter

SEAT_PREFIX = "/cvlab/seats/"
_SEAT_PATH = re.compile(r"^/cvlab/seats/([a-z0-9][a-z0-9-]{0,31})(/.*)$")

#: One training queue per process: training's lock is per process too (2 cores, 1 training at a time).
QUEUE = core.TrainingQueue(slots=1)


class SeatDirectory:
    """Seat keys -> seat contexts (made on first use, cached); re-reads the seat list when it changes."""

    def __init__(self, ctx: ServiceContext, rate_limits: bool):
        self.ctx = ctx
        self.rate_limits = rate_limits
        self._lock = threading.Lock()
        self._contexts: dict[str, ServiceContext] = {}
        self._recovered: set[str] = set()

    def seats(self) -> list[core.Seat]:
        return core.get_seats(self.ctx.ws)

    def context(self, name: str) -> ServiceContext:
        with self._lock:
            c = self._contexts.get(name)
            if c is None:
                seat = core.get_seat(self.ctx.ws, name)
                sw = core.open_seat(self.ctx.ws, name)
                if name not in self._recovered:  # once per process: later contexts may have work running
                    self._recovered.add(name)
                    _recover(sw)
                QUEUE.register(sw, name)
                c = ServiceContext(sw, ServiceKeys(seat.training_key, seat.prediction_key,
                                                   seat.prediction_resource_id),
                                   RateLimiter(sw, enabled=self.rate_limits))
                c.seat = name
                self._contexts[name] = c
            return c

    def enter(self, scope, name: str) -> None:
        scope["cvlab.ctx"] = self.context(name)
        scope["root_path"] = scope.get("root_path", "") + SEAT_PREFIX + name  # URLs built for this seat

    def admit(self, scope, api: str, presented: list[str]) -> bool:
        seat = core.match_key(self.seats(), api, presented)
        if seat is None:
            return False
        ctx = self.context(seat.name)
        if ctx.keys.training_key != seat.training_key or ctx.keys.prediction_key != seat.prediction_key:
            with self._lock:  # keys were renewed by `cvlab workshop reset --new-keys`
                self._contexts.pop(seat.name, None)
        self.enter(scope, seat.name)
        return True


def _recover(sw) -> None:
    """A seat's trainings/exports left running by a stopped server end Failed, so the learner can start again."""
    from cvlab.export import recover_interrupted
    recover_interrupted(sw)


class SeatPaths:
    """ASGI middleware: ``/cvlab/seats/<seat>/blobs/...`` and ``.../exports/...`` reach the seat's own blobs
    (those URLs are signed or carry an unguessable token, like Azure's SAS URLs)."""

    def __init__(self, app, directory: SeatDirectory):
        self.app = app
        self.directory = directory

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            m = _SEAT_PATH.match(scope["path"])
            if m and m.group(2).startswith(("/blobs/", "/exports/")):
                try:
                    self.directory.enter(scope := dict(scope), m.group(1))
                except CvlabError:
                    pass  # unknown seat: falls through to a 404
        return await self.app(scope, receive, send)


def _instructor(request: Request) -> None:
    """The instructor's training key, or 401 (no or wrong key) / 403 (a seat's key: not for learners)."""
    ctx = request.app.state.ctx
    found = presented_keys(request.headers, dict(request.query_params), "training")
    if key_ok(found, ctx.keys.training_key):
        return
    if found and core.match_key(ctx.seats.seats(), "training", found) is not None:
        raise CvlabError("Forbidden", "This is the instructor's view: a seat's key opens only its own progress "
                         "(GET /cvlab/workshop/seat).", status=403)
    raise CvlabError("Unauthorized", "Send the instructor's training key (Training-Key header).", status=401)


def _seat(request: Request) -> core.Seat:
    found = presented_keys(request.headers, dict(request.query_params), "training")
    seat = core.match_key(request.app.state.ctx.seats.seats(), "training", found)
    if seat is None:
        raise CvlabError("Unauthorized", "Send your seat's training key (Training-Key header), the one on your "
                         "handout.", status=401)
    return seat


router = APIRouter(prefix="/cvlab/workshop", tags=["workshop"])


def _table_args(idleMinutes: int, failures: int) -> dict:
    if not 1 <= idleMinutes <= 24 * 60:
        raise CvlabError("BadRequestInvalid", f"idleMinutes is 1 to 1440 (got {idleMinutes}).")
    if not 1 <= failures <= 100:
        raise CvlabError("BadRequestInvalid", f"failures is 1 to 100 (got {failures}).")
    return {"idle_minutes": idleMinutes, "failures": failures}


@router.get("/progress", summary="The Class table: one row per seat (instructor key); format=json or csv")
async def get_progress(request: Request, format: str = "json", idleMinutes: int = board.IDLE_MINUTES,
                       failures: int = board.FAILURES):
    _instructor(request)
    ctx = request.app.state.ctx
    args = _table_args(idleMinutes, failures)
    if format not in ("json", "csv"):
        raise CvlabError("BadRequestInvalid", f"format is json or csv, not {format!r}.")
    table = await run_in_threadpool(lambda: {**ctx.board.table(**args), "queue": QUEUE.snapshot()})
    if format == "csv":
        return Response(board.to_csv(table), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="class-progress.csv"'})
    return table


@router.get("/seats/{seat}/progress", summary="Everything one seat reported, with details (instructor key)")
async def get_seat_progress(request: Request, seat: str):
    _instructor(request)
    ctx = request.app.state.ctx
    core.get_seat(ctx.ws, seat)
    return await run_in_threadpool(ctx.board.details, seat)


@router.get("/seat", summary="Which seat this key opens, and what it has reported (seat key)")
async def get_own_seat(request: Request):
    seat = _seat(request)
    ctx = request.app.state.ctx
    return {"seat": seat.name, **await run_in_threadpool(ctx.board.details, seat.name)}


@router.post("/events", summary="A joined learner's progress events (seat key); answers the highest seq kept")
async def post_events(request: Request):
    seat = _seat(request)
    try:
        body = await request.json()
    except ValueError:
        raise CvlabError("BadRequestInvalid", 'The body is not JSON: send {"stream": "...", "events": [...]}.') \
            from None
    ctx = request.app.state.ctx
    return {"seat": seat.name, **await run_in_threadpool(ctx.classroom.ingest, seat.name, body)}


@router.post("/quiz", summary="A learner submits a quiz score (seat training key)")
async def post_quiz(request: Request):
    seat = _seat(request)
    ctx = request.app.state.ctx
    try:
        body = await request.json()
    except ValueError:
        raise CvlabError("BadRequestInvalid", "The body is not JSON: send {\"quiz\": ..., \"answered\": n, "
                         "\"correct\": k}.") from None
    entry = core.submit_quiz(ctx.seats.context(seat.name).ws, body)
    return {"seat": seat.name, **entry}


@router.post("/seats/{seat}/reset", summary="Reset one seat (instructor key)")
async def post_reset(request: Request, seat: str, newKeys: bool = False):
    _instructor(request)
    ctx = request.app.state.ctx
    return await run_in_threadpool(core.reset_seat, ctx.ws, seat, new_keys=newKeys)


@router.post("/seats/{seat}/keys", summary="Issue new keys for one seat, projects kept (instructor key)")
async def post_rotate(request: Request, seat: str):
    _instructor(request)
    ctx = request.app.state.ctx
    fresh = await run_in_threadpool(core.rotate_keys, ctx.ws, seat)
    return {"seat": fresh.name, "trainingKey": fresh.training_key, "predictionKey": fresh.prediction_key}


def _load_quiz_bank() -> None:
    from cvlab import quiz
    quiz.questions()


def install(app, ctx: ServiceContext) -> None:
    """Serve the workspace's seats on ``app`` (see the module docstring)."""
    from cvlab import training
    directory = SeatDirectory(ctx, rate_limits=ctx.limiter.enabled)
    ctx.seats = directory
    ctx.classroom = ClassStore(ctx.ws)
    ctx.board = board.Board(ctx.ws, ctx.classroom, open_ws=lambda name: directory.context(name).ws)
    # The quiz bank takes seconds to load (YAML + schema): load it now, not when the first quiz answer arrives.
    threading.Thread(target=_load_quiz_bank, name="cvlab-quiz-bank", daemon=True).start()
    QUEUE.register(ctx.ws, "instructor")
    training.admission = QUEUE  # only registered (workshop) workspaces are queued; others train as before
    app.include_router(router)
    app.add_middleware(SeatPaths, directory=directory)

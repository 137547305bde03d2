"""Workshop mode in the service, and the ``cvlab workshop`` command.

``install(app, ctx)`` (called by ``create_app`` when the workspace has seats) gives every seat its own
``ServiceContext`` on its own seat workspace; the gateway hands a request to that context when a seat's key is
presented (``SeatDirectory.admit``), so every route family is isolated without knowing about seats. A seat's blob
and export URLs carry ``/cvlab/seats/<seat>`` (the request's root path), which ``SeatPaths`` maps back. Training
goes through one fair ``cvlab.workshop.TrainingQueue``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import threading

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from cvlab import workshop as core
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


def _require(request: Request, key: str) -> None:
    found = presented_keys(request.headers, dict(request.query_params), "training")
    if not key_ok(found, key):
        raise CvlabError("Unauthorized", "Send the instructor's training key (Training-Key header).", status=401)


router = APIRouter(prefix="/cvlab/workshop", tags=["workshop"])


@router.get("/progress", summary="Every seat's projects, iterations, metrics and submitted quiz scores")
async def get_progress(request: Request):
    ctx = request.app.state.ctx
    _require(request, ctx.keys.training_key)
    directory: SeatDirectory = ctx.seats
    return await run_in_threadpool(core.progress, ctx.ws, lambda name: directory.context(name).ws, QUEUE)


@router.post("/quiz", summary="A learner submits a quiz score (seat training key)")
async def post_quiz(request: Request):
    ctx = request.app.state.ctx
    seat = core.match_key(ctx.seats.seats(), "training",
                          presented_keys(request.headers, dict(request.query_params), "training"))
    if seat is None:
        raise CvlabError("Unauthorized", "Send your seat's training key (Training-Key header) to submit a quiz "
                         "score.", status=401)
    try:
        body = await request.json()
    except ValueError:
        raise CvlabError("BadRequestInvalid", "The body is not JSON: send {\"quiz\": ..., \"answered\": n, "
                         "\"correct\": k}.") from None
    entry = core.submit_quiz(ctx.seats.context(seat.name).ws, body)
    return {"seat": seat.name, **entry}


@router.post("/seats/{seat}/reset", summary="Reset one seat (instructor key)")
async def post_reset(request: Request, seat: str, newKeys: bool = False):
    ctx = request.app.state.ctx
    _require(request, ctx.keys.training_key)
    return await run_in_threadpool(core.reset_seat, ctx.ws, seat, new_keys=newKeys)


def install(app, ctx: ServiceContext) -> None:
    """Serve the workspace's seats on ``app`` (see the module docstring)."""
    from cvlab import training
    directory = SeatDirectory(ctx, rate_limits=ctx.limiter.enabled)
    ctx.seats = directory
    QUEUE.register(ctx.ws, "instructor")
    training.admission = QUEUE  # only registered (workshop) workspaces are queued; others train as before
    app.include_router(router)
    app.add_middleware(SeatPaths, directory=directory)


# ---- `cvlab workshop` ------------------------------------------------------------------------------------------
def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", default=None, help="the instructor's workspace (default: $CVLAB_WORKSPACE "
                        "or ./workspace)")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("create", help="create N learner seats (existing seats keep their keys and projects)")
    p.add_argument("--seats", type=int, required=True)
    p = sub.add_parser("serve", help="create the seats if needed and serve the endpoint for the room")
    p.add_argument("--seats", type=int, default=None, help="number of seats (default: those already created)")
    p.add_argument("--host", default="127.0.0.1", help="use 0.0.0.0 so learners' laptops can reach you")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--tier", choices=("F0", "S0"), default=None)
    p.add_argument("--no-rate-limit", action="store_true")
    p = sub.add_parser("handout", help="print a page per seat: endpoint, keys, first steps (Markdown or HTML)")
    p.add_argument("--endpoint", default="http://127.0.0.1:8080", help="the URL learners use to reach you")
    p.add_argument("--format", choices=("md", "html"), default="md")
    p.add_argument("--seat", action="append", default=None, help="only this seat (repeatable)")
    p.add_argument("--out", default=None, help="write to this file instead of printing")
    p = sub.add_parser("reset", help="return seats to a clean state (all, or --seat K)")
    p.add_argument("--seat", action="append", default=None, help="only this seat (repeatable)")
    p.add_argument("--new-keys", action="store_true", help="also issue new keys (old handouts stop working)")
    p = sub.add_parser("progress", help="print every seat's progress as JSON")
    p = sub.add_parser("notebooks", help="write learner / instructor versions of the notebooks")
    p.add_argument("--out", required=True)
    p.add_argument("--version", choices=("learner", "instructor", "both"), default="both")
    p.add_argument("--source", default=None, help="notebooks folder (default: the curriculum's)")


def run(args: argparse.Namespace) -> int:
    if args.action == "notebooks":
        from cvlab import notebook_versions as nv
        written = nv.write_versions(args.out, args.version, source=args.source)
        print(json.dumps({"written": [str(p) for p in written]}, indent=1))
        return 0
    from cvlab.workspace import open_workspace
    ws = open_workspace(args.workspace)
    if args.action == "create":
        seats = core.create_seats(ws, args.seats)
        print(f"{len(seats)} seats in {ws.path}: {', '.join(s.name for s in seats)}. "
              "Print their pages with `cvlab workshop handout`.")
    elif args.action == "handout":
        text = core.handout(ws, args.endpoint, args.format, args.seat)
        if args.out:
            from pathlib import Path
            Path(args.out).write_text(text)
            print(f"Handout for {len(args.seat or core.get_seats(ws))} seat(s) written to {args.out}")
        else:
            sys.stdout.write(text + "\n")
    elif args.action == "reset":
        names = args.seat or [s.name for s in core.get_seats(ws)]
        for name in names:
            print(json.dumps(core.reset_seat(ws, name, new_keys=args.new_keys)))
    elif args.action == "progress":
        print(json.dumps(core.progress(ws), indent=1))
    elif args.action == "serve":
        return _serve(ws, args)
    return 0


def _serve(ws, args) -> int:
    from .app import create_app
    from .server import bind_socket, serve_forever, warn_if_exposed
    if args.seats:
        core.create_seats(ws, args.seats)
    if not core.get_seats(ws):
        raise CvlabError("BadRequestInvalid", "No seats yet: pass --seats N.")
    app = create_app(ws, tier=args.tier, rate_limits=not args.no_rate_limit, workshop=True)
    sock = bind_socket(args.host, args.port)
    port = sock.getsockname()[1]
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    endpoint = f"http://{host}:{port}"
    keys = app.state.ctx.keys
    print(f"cvlab workshop endpoint {endpoint} for {len(core.get_seats(ws))} seats (workspace {ws.path})")
    print(f"  Instructor training key: {keys.training_key}")
    print(f"  Progress:                GET {endpoint}/cvlab/workshop/progress (Training-Key: instructor key)")
    print("  Learner pages:           cvlab workshop handout --endpoint URL-learners-use --format html --out h.html")
    warning = warn_if_exposed(args.host)
    if warning:
        print(warning)
    print("Press Ctrl+C to stop.", flush=True)
    serve_forever(app, sock)
    return 0

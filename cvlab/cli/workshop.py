"""``cvlab workshop``: seats for a classroom, their handout, progress and reset, the room's endpoint, and the
learner / instructor notebooks."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cvlab import notebook_versions as nv
from cvlab import workshop as core
from cvlab.errors import CvlabError
from cvlab.service.app import create_app
from cvlab.service.server import bind_socket, serve_forever, warn_if_exposed
from cvlab.workspace import open_workspace


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cvlab workshop`` and its actions."""
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
    """Run one ``cvlab workshop`` action."""
    if args.action == "notebooks":
        written = nv.write_versions(args.out, args.version, source=args.source)
        print(json.dumps({"written": [str(p) for p in written]}, indent=1))
        return 0
    ws = open_workspace(args.workspace)
    if args.action == "create":
        seats = core.create_seats(ws, args.seats)
        print(f"{len(seats)} seats in {ws.path}: {', '.join(s.name for s in seats)}. "
              "Print their pages with `cvlab workshop handout`.")
    elif args.action == "handout":
        text = core.handout(ws, args.endpoint, args.format, args.seat)
        if args.out:
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

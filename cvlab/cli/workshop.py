"""``cvlab workshop``: seats for a classroom, their handout, the Class progress table, reset and new keys, the
room's endpoint, and the curriculum as learner / instructor notebooks or an nbgrader course."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cvlab import workshop as core
from cvlab.errors import CvlabError
from cvlab.workspace import open_workspace


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cvlab workshop`` and its actions."""
    parser.add_argument("--workspace", default=None, help="the instructor's workspace (default: $CVLAB_WORKSPACE "
                        "or ./workspace)")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("create", help="create learner seats seat-01..seat-NN (existing seats keep their keys and "
                       "projects; none is ever removed)")
    p.add_argument("--seats", type=int, required=True, metavar="N", help="how many seats the room needs (1-200)")
    p = sub.add_parser("serve", help="create the seats if needed and serve the endpoint for the room")
    p.add_argument("--seats", type=int, default=None, metavar="N",
                   help="make sure N seats exist first (default: the seats already created)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on: 127.0.0.1 (default) is this machine "
                   "only; 0.0.0.0 lets learners' laptops reach you")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--tier", choices=("F0", "S0"), default=None,
                   help="the pricing tier every seat gets (limits and rate limits; default: the workspace's)")
    p.add_argument("--no-rate-limit", action="store_true",
                   help="do not enforce the tier's requests-per-second limits per seat")
    p.add_argument("--handout", default=None, metavar="FILE",
                   help="also write the handout (HTML, or Markdown for a .md name) with the address really bound")
    p = sub.add_parser("handout", help="print a page per seat: the join command, endpoint, keys, first steps")
    p.add_argument("--endpoint", default=None, metavar="URL",
                   help="the URL learners use to reach the server (default: where `cvlab workshop serve` listens)")
    p.add_argument("--format", choices=("md", "html", "env", "json"), default="md",
                   help="md (default), html (to print), env (`cvlab lab --join FILE` reads it) or json (the seat "
                        "list JupyterHub reads: deploy/jupyterhub/)")
    p.add_argument("--seat", action="append", default=None, metavar="NAME",
                   help="only this seat (repeatable; default every seat)")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="write to this file instead of printing; with --format env, a folder gets one "
                        "seat-NN.env per seat")
    p = sub.add_parser("progress", help="the Class table: one row per seat (lessons, exercises, quiz skills, best "
                       "metric, published models, who needs help)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="table (default, for a terminal), csv (a spreadsheet) or json (with every seat's details)")
    p.add_argument("--idle-minutes", type=int, default=10, metavar="N",
                   help="flag seats with no progress for N minutes (default 10)")
    p.add_argument("--failures", type=int, default=3, metavar="N",
                   help="flag an exercise whose check failed N times since it last passed (default 3)")
    p.add_argument("--watch", type=float, default=None, metavar="SECONDS",
                   help="print the table again every SECONDS until Ctrl+C")
    p.add_argument("--out", default=None, metavar="FILE", help="write to this file instead of printing")
    p = sub.add_parser("reset", help="return seats to a clean state (lists what it deletes and asks first)")
    p.add_argument("--seat", action="append", default=None, metavar="NAME",
                   help="only this seat (repeatable; default every seat)")
    p.add_argument("--yes", action="store_true", help="delete without asking (scripts); without it nothing is "
                   "deleted unless you confirm")
    p.add_argument("--new-keys", action="store_true", help="also issue new keys (old handouts stop working)")
    p = sub.add_parser("rotate-keys", help="issue new keys for a seat whose keys leaked (projects are kept; the "
                       "old keys stop working at once)")
    p.add_argument("--seat", action="append", required=True, metavar="NAME", help="the seat (repeatable)")
    p.add_argument("--endpoint", default=None, metavar="URL",
                   help="the URL for the new join command (default: where `cvlab workshop serve` listens)")
    p = sub.add_parser("notebooks", help="write the curriculum as learner / instructor notebooks, or as an "
                       "nbgrader source course")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write into")
    p.add_argument("--format", choices=("ipynb", "nbgrader"), default="ipynb",
                   help="ipynb (default): learner and/or instructor notebooks; nbgrader: DIR becomes an nbgrader "
                        "course (source/<lesson>/, nbgrader_config.py)")
    p.add_argument("--version", choices=("learner", "instructor", "both"), default="both",
                   help="which ipynb versions to write (default both; ignored for nbgrader)")
    p.add_argument("--source", default=None, metavar="DIR", help="the lessons' folder (default: the curriculum's)")


def run(args: argparse.Namespace) -> int:
    """Run one ``cvlab workshop`` action."""
    if args.action == "notebooks":
        return _notebooks(args)
    ws = open_workspace(args.workspace)
    action = {"create": _create, "serve": _serve, "handout": _handout, "progress": _progress, "reset": _reset,
              "rotate-keys": _rotate}[args.action]
    return action(ws, args) or 0


def _notebooks(args) -> int:
    if args.format == "nbgrader":
        from cvlab.classroom.nbgrader import write_course
        written = write_course(args.out, source=args.source)
        print(json.dumps({"course": str(Path(args.out).resolve()), "assignments": written}, indent=1))
        print(f"Next: cd {args.out} && nbgrader generate_assignment <lesson> (e.g. {next(iter(written), 'NN')}) "
              "to make the release version.", file=sys.stderr)
        return 0
    from cvlab import notebook_versions as nv
    written = nv.write_versions(args.out, args.version, source=args.source)
    print(json.dumps({"written": [str(p) for p in written]}, indent=1))
    return 0


def _create(ws, args) -> None:
    before = {s.name for s in core.get_seats(ws)}
    seats = core.create_seats(ws, args.seats)
    added = [s.name for s in seats if s.name not in before]
    if args.seats < len(before):
        print(f"{len(before)} seats exist already, more than the {args.seats} asked for: none was removed (create "
              "only adds seats; every seat keeps its keys and projects).\n"
              "  To give a seat a clean start: cvlab workshop reset --seat NAME\n"
              "  To withdraw a seat's keys:    cvlab workshop rotate-keys --seat NAME")
    elif added:
        print(f"Added {len(added)} seat(s): {added[0]}..{added[-1]}; {len(seats)} in {ws.path}.")
    else:
        print(f"All {args.seats} seats exist already ({seats[0].name}..{seats[-1].name}); nothing changed.")
    print("Next: cvlab workshop serve --host 0.0.0.0 --handout handout.html")


def env_file(seat: core.Seat, endpoint: str) -> str:
    """A seat's settings as an env file: ``cvlab lab --join seat-NN.env`` reads the first two; the others are
    the names Microsoft's labs (``TrainingKey``) and quickstarts (``VISION_TRAINING_KEY``) read."""
    from cvlab.classroom.learner import ENV_KEY, ENV_URL
    from cvlab.service.auth import ServiceKeys
    from cvlab.service.server import env_settings
    keys = ServiceKeys(seat.training_key, seat.prediction_key, seat.prediction_resource_id)
    lines = [f"# cvlab workshop, {seat.name}: `cvlab lab --join {seat.name}.env` (keep this file private)",
             f"{ENV_URL}={endpoint}", f"{ENV_KEY}={seat.training_key}"]
    lines += [f"{k}={v}" for k, v in env_settings(endpoint, keys).items()]
    return "\n".join(lines) + "\n"


def _handout(ws, args) -> None:
    names = args.seat or [s.name for s in core.get_seats(ws)]
    if args.format == "env":
        endpoint = core.handout_endpoint(ws, args.endpoint)
        seats = [core.get_seat(ws, n) for n in names]
        if args.out and (Path(args.out).is_dir() or args.out.endswith(("/", "\\"))):
            folder = Path(args.out)
            folder.mkdir(parents=True, exist_ok=True)
            for seat in seats:
                path = folder / f"{seat.name}.env"
                path.write_text(env_file(seat, endpoint))
                path.chmod(0o600)
            print(f"{len(names)} env file(s) written to {folder}: give each learner theirs; they run "
                  "`cvlab lab --join seat-NN.env`.")
            return
        text = "\n".join(env_file(seat, endpoint) for seat in seats)
    else:
        text = core.handout(ws, args.endpoint, args.format, args.seat)
    if args.out:
        Path(args.out).write_text(text)
        print(f"Handout for {len(names)} seat(s) written to {args.out} (endpoint "
              f"{core.handout_endpoint(ws, args.endpoint)}).")
    else:
        sys.stdout.write(text + "\n")


def _progress(ws, args) -> int:
    from cvlab.classroom import board as B
    if not core.get_seats(ws):
        raise CvlabError("NotFound", "This workspace has no workshop seats: run `cvlab workshop create --seats N`.")
    for name, value, top in (("--idle-minutes", args.idle_minutes, 1440), ("--failures", args.failures, 100)):
        if not 1 <= value <= top:
            raise CvlabError("BadRequestInvalid", f"{name} is 1 to {top} (got {value}).")
    board = B.Board(ws)
    try:
        while True:
            table = board.table(idle_minutes=args.idle_minutes, failures=args.failures,
                                details=args.format == "json")
            text = (B.to_text(table) if args.format == "table" else B.to_csv(table) if args.format == "csv"
                    else json.dumps(table, indent=1, default=str))
            if args.out:
                Path(args.out).write_text(text if text.endswith("\n") else text + "\n")
                print(f"Progress of {len(table['rows'])} seats written to {args.out}")
            elif args.watch:
                sys.stdout.write("\033[H\033[J" + f"cvlab workshop progress, {table['generated']} (Ctrl+C stops)\n\n"
                                 + text + "\n")
                sys.stdout.flush()
            else:
                sys.stdout.write(text if text.endswith("\n") else text + "\n")
            if not args.watch:
                return 0
            time.sleep(max(0.5, args.watch))
    except KeyboardInterrupt:
        return 0
    finally:
        board.store.close()


def _reset(ws, args) -> int:
    names = args.seat or [s.name for s in core.get_seats(ws)]
    if not names:
        raise CvlabError("NotFound", "This workspace has no workshop seats: nothing to reset.")
    plans = [core.reset_plan(ws, name) for name in names]
    print(f"Resetting {len(names)} seat(s) deletes, for good:")
    for plan in plans:
        print(core.describe_plan(plan))
    if args.new_keys:
        print("and issues new keys: the handouts of these seats stop working.")
    if not args.yes:
        if not sys.stdin.isatty():
            print("Nothing deleted: no terminal to ask in. Run again with --yes to confirm.", file=sys.stderr)
            return 1
        answer = input(f"Delete all of this for {len(names)} seat(s)? Type yes to confirm: ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing deleted.")
            return 1
    for name in names:
        r = core.reset_seat(ws, name, new_keys=args.new_keys)
        print(f"{name}: reset ({r['projects_removed']} projects, {r['events_removed']} reported events removed"
              f"{', new keys' if r['new_keys'] else ''})")
    return 0


def _rotate(ws, args) -> None:
    endpoint = args.endpoint or core.recorded_endpoint(ws)
    for name in args.seat:
        seat = core.rotate_keys(ws, name)
        print(f"{seat.name}: new keys issued; the old ones no longer work.")
        if endpoint:
            print(f"  the learner joins again with: {core.join_command(endpoint, seat)}")
        print(f"  new handout page: cvlab workshop handout --seat {seat.name} --format html --out {seat.name}.html")


def _serve(ws, args) -> int:
    from cvlab.service.app import create_app
    from cvlab.service.server import bind_socket, serve_forever, warn_if_exposed
    if args.seats:
        core.create_seats(ws, args.seats)
    if not core.get_seats(ws):
        raise CvlabError("BadRequestInvalid", "No seats yet: pass --seats N (or run `cvlab workshop create`).")
    app = create_app(ws, tier=args.tier, rate_limits=not args.no_rate_limit, workshop=True)
    sock = bind_socket(args.host, args.port)
    info = core.record_endpoint(ws, args.host, sock.getsockname()[1])
    endpoint = info["url"]
    keys = app.state.ctx.keys
    print(f"cvlab workshop endpoint {endpoint} for {len(core.get_seats(ws))} seats (workspace {ws.path})")
    print(f"  Instructor training key: {keys.training_key}")
    print(f"  Class page:              {endpoint}/#/class (sign in with the instructor key)")
    print("  Progress in a terminal:  cvlab workshop progress --watch 5")
    print("  Learner pages:           cvlab workshop handout --format html --out handout.html")
    for line in core.room_notice(info):
        print(line)
    warning = warn_if_exposed(args.host)
    if warning:
        print(warning)
    if args.handout:
        fmt = "md" if args.handout.endswith(".md") else "html"
        Path(args.handout).write_text(core.handout(ws, endpoint, fmt))
        print(f"  Handout written to {args.handout} (endpoint {endpoint})")
    print("Press Ctrl+C to stop.", flush=True)
    serve_forever(app, sock)
    return 0

"""``cvlab serve``: run the local Custom Vision endpoint and print what the SDK needs to reach it."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from cvlab.service.app import create_app
from cvlab.service.server import bind_socket, env_settings, serve_forever, warn_if_exposed
from cvlab.workshop import create_seats
from cvlab.workspace import open_workspace


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cvlab serve``."""
    parser.add_argument("--workspace", default=None, help="workspace folder (default: $CVLAB_WORKSPACE or ./workspace)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 = any free port)")
    parser.add_argument("--tier", choices=("F0", "S0"), default=None,
                        help="switch the workspace's pricing tier (limits and rate limits) before serving")
    parser.add_argument("--training-key", default=None, help="training key (default: $CVLAB_TRAINING_KEY or the "
                        "workspace's own key, generated once)")
    parser.add_argument("--prediction-key", default=None, help="prediction key (default: $CVLAB_PREDICTION_KEY or "
                        "the workspace's own key)")
    parser.add_argument("--env-file", default=None, metavar="PATH",
                        help="also write the endpoints and keys to PATH in both spellings Microsoft's labs and "
                             "quickstarts use (TrainingKey=..., VISION_TRAINING_KEY=...)")
    parser.add_argument("--no-rate-limit", action="store_true",
                        help="do not enforce the tier's requests-per-second limits")
    parser.add_argument("--workshop", type=int, default=None, metavar="N",
                        help="classroom mode: N learner seats, each with its own keys and isolated projects "
                             "(see `cvlab workshop --help`: handout, progress, reset)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                        help="how much the server logs (default info; requests themselves are never logged)")


def env_lines(endpoint: str, keys) -> list[str]:
    return [f"{k}={v}" for k, v in env_settings(endpoint, keys).items()]


def write_env_file(path: str | os.PathLike, endpoint: str, keys) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# cvlab local Custom Vision endpoint (written by `cvlab serve --env-file`)\n" + \
        "\n".join(env_lines(endpoint, keys)) + "\n"
    path.write_text(text)
    try:
        path.chmod(0o600)  # holds keys
    except OSError:
        pass
    return path


def _stack_dumps_on_sigusr1() -> None:
    """`kill -USR1 <pid>` prints every thread's stack: how to see what a stuck server is waiting for."""
    import faulthandler
    import signal
    import sys

    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=sys.stdout, all_threads=True, chain=False)


def run(args: argparse.Namespace) -> int:
    ws = open_workspace(args.workspace)
    if args.workshop:
        create_seats(ws, args.workshop)
    app = create_app(ws, training_key=args.training_key, prediction_key=args.prediction_key, tier=args.tier,
                     rate_limits=not args.no_rate_limit)
    keys = app.state.ctx.keys
    sock = bind_socket(args.host, args.port)
    port = sock.getsockname()[1]  # port 0 resolves here, so the printed endpoint is the real one
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    endpoint = f"http://{shown_host}:{port}"
    warning = warn_if_exposed(args.host)
    print(f"cvlab Custom Vision endpoint for workspace {ws.path} (tier {ws.tier})")
    print(f"  Training endpoint:       {endpoint}")
    print(f"  Training key:            {keys.training_key}")
    print(f"  Prediction endpoint:     {endpoint}")
    print(f"  Prediction key:          {keys.prediction_key}")
    print(f"  Prediction resource id:  {keys.prediction_resource_id}")
    print(f"  Portal:                  {endpoint}/  (a local customvision.ai; sign in with the training key)")
    print(f"  API docs:                {endpoint}/docs")
    if warning:
        print(warning)
    if getattr(app.state.ctx, "seats", None) is not None:
        from cvlab.workshop import record_endpoint, room_notice
        room = record_endpoint(ws, args.host, port)  # the handout prints the address really bound
        print(f"  Workshop:                {len(app.state.ctx.seats.seats())} seats; the keys above are the "
              f"instructor's. Class page: {room['url']}/#/class; learner pages: `cvlab workshop handout`")
        for line in room_notice(room, "cvlab serve --workshop N"):
            print("  " + line)
    if args.env_file:
        print(f"  Settings written to:     {write_env_file(args.env_file, endpoint, keys)}")
    print("Press Ctrl+C to stop.", flush=True)
    _stack_dumps_on_sigusr1()
    serve_forever(app, sock, log_level=args.log_level)
    return 0

"""The learner's side of a workshop: joining a seat, noting lesson progress, and the reporter that sends it.

Nothing here talks to the network from a notebook. A lesson's kernel only appends one line per cell run to
``<workspace>/classroom/cells.jsonl`` (the cell's id and a digest of its source, never its code); a separate
reporter process (``python -m cvlab.classroom report``, one per workspace) turns that log, the quiz records and
the workspace's iterations into events and sends them (``cvlab.classroom.reporter``). Training stays on the
learner's machine; only these small records travel.

A learner joins with ``cvlab lab --join URL --key SEAT_KEY`` (or ``--join seat.env``, the handout's env file), which
keeps ``classroom/join.json`` in the workspace; on JupyterHub the hub sets ``CVLAB_WORKSHOP_URL`` and
``CVLAB_WORKSHOP_KEY`` instead (``deploy/jupyterhub/``).
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from cvlab.errors import CvlabError

from .lessons import cell_digest
from .outbox import write_atomic

FOLDER = "classroom"
JOIN_FILE = "join.json"
CELLS_LOG = "cells.jsonl"
STATUS_FILE = "status.json"
LOCK_FILE = "reporter.lock"
REPORTER_LOG = "reporter.log"
ENV_URL, ENV_KEY = "CVLAB_WORKSHOP_URL", "CVLAB_WORKSHOP_KEY"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def folder(workspace) -> Path:
    """``<workspace>/classroom`` (made on first use)."""
    path = Path(getattr(workspace, "path", workspace)).expanduser() / FOLDER
    path.mkdir(parents=True, exist_ok=True)
    return path


def _workspace_path(ws=None) -> Path:
    if ws is not None:
        return Path(getattr(ws, "path", ws)).expanduser()
    from cvlab.workspace import default_workspace_path
    return default_workspace_path()


# ---- joining --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Joined:
    endpoint: str
    key: str
    seat: str | None
    source: str          # "join.json" or "environment"

    def __repr__(self) -> str:  # the key never ends up in a log or a notebook's output
        return f"Joined({self.endpoint!r}, seat={self.seat!r}, key='***', source={self.source!r})"


def check_endpoint(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash, or a CvlabError saying what to fix."""
    url = (url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CvlabError("BadRequestInvalid", f"{url!r} is not a workshop address: copy it from the handout, e.g. "
                         "http://192.168.1.20:8080.")
    if parts.query or parts.fragment:
        raise CvlabError("BadRequestInvalid", f"{url!r}: the workshop address has no ?query or #fragment.")
    return url


def joined(workspace=None) -> Joined | None:
    """Where this workspace reports to: the environment (JupyterHub) first, then ``classroom/join.json``."""
    from cvlab import config
    s = config.settings()
    if s.workshop_url and s.workshop_key:
        return Joined(check_endpoint(s.workshop_url), s.workshop_key, None, "environment")
    path = _workspace_path(workspace) / FOLDER / JOIN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Joined(data["endpoint"], data["key"], data.get("seat"), JOIN_FILE)
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def read_env_file(path: str | os.PathLike) -> tuple[str, str]:
    """The workshop address and seat key from a handout's env file (``CVLAB_WORKSHOP_URL=...`` lines)."""
    values: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise CvlabError("NotFound", f"Cannot read {path}: {e.strerror}. Use the .env file from your handout, or "
                         "pass --join URL --key KEY.") from None
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            values[k.strip().removeprefix("export ").strip()] = v.strip().strip("'\"")
    if not values.get(ENV_URL) or not values.get(ENV_KEY):
        raise CvlabError("BadRequestInvalid", f"{path} has no {ENV_URL}=... and {ENV_KEY}=... lines: use the env "
                         "file from your workshop handout.")
    return values[ENV_URL], values[ENV_KEY]


def whoami(endpoint: str, key: str, timeout: float = 5.0) -> str:
    """The seat this key belongs to, asked of the workshop server (``GET /cvlab/workshop/seat``)."""
    import requests
    r = requests.get(f"{endpoint}/cvlab/workshop/seat", headers={"Training-Key": key}, timeout=timeout)
    if r.status_code in (401, 403):
        raise CvlabError("Unauthorized", f"The workshop at {endpoint} does not accept this key: copy the seat's "
                         "training key from your handout (your instructor may have issued a new one).", status=401)
    if r.status_code == 404:
        raise CvlabError("NotFound", f"{endpoint} answers but runs no workshop (GET /cvlab/workshop/seat gave 404): "
                         "check the address on the handout; the instructor starts it with `cvlab workshop serve`.")
    r.raise_for_status()
    return r.json()["seat"]


@dataclass(frozen=True)
class JoinResult:
    joined: Joined
    reachable: bool
    message: str


def join(workspace, endpoint: str, key: str, *, timeout: float = 5.0) -> JoinResult:
    """Join a workshop seat: this workspace's course progress goes to ``endpoint`` with the seat's ``key``.

    The server is asked which seat the key opens; a refused key is an error, an unreachable server is not (the
    progress waits in the workspace and goes when the server answers)."""
    import requests
    endpoint = check_endpoint(endpoint)
    key = (key or "").strip()
    if not key:
        raise CvlabError("BadRequestInvalid", "Give your seat's key: --key KEY (the Training key on your handout).")
    seat, reachable = None, True
    try:
        seat = whoami(endpoint, key, timeout)
    except requests.RequestException:
        reachable = False
    where = folder(_workspace_path(workspace))
    write_atomic(where / JOIN_FILE, json.dumps({"endpoint": endpoint, "key": key, "seat": seat,
                                               "joined": now_iso()}, indent=1).encode())
    j = Joined(endpoint, key, seat, JOIN_FILE)
    if reachable:
        msg = f"Joined {seat} of the workshop at {endpoint}: your lessons, exercises, quiz answers and iterations " \
              "are reported to your instructor (training stays on this machine)."
    else:
        msg = f"The workshop at {endpoint} does not answer now. You are joined anyway: your progress is kept in " \
              "this workspace and sent as soon as it answers."
    return JoinResult(j, reachable, msg)


def leave(workspace) -> bool:
    """Stop reporting (what was already sent stays with the instructor). True if the workspace had joined."""
    path = folder(_workspace_path(workspace)) / JOIN_FILE
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def status(workspace=None) -> dict:
    """Whether this workspace reports to a workshop, and how the reporter is doing (what ``cvlab lab`` prints)."""
    path = _workspace_path(workspace)
    j = joined(path)
    out: dict = {"joined": j is not None}
    if j is None:
        return out
    try:
        reported = json.loads((path / FOLDER / STATUS_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        reported = {}
    if reported.get("endpoint") == j.endpoint:  # what the reporter said about this workshop, not an earlier one
        out.update(reported)
    out.update(endpoint=j.endpoint, seat=j.seat, source=j.source, reporter_running=reporter_running(path))
    return out


# ---- the lesson hook --------------------------------------------------------------------------------------------
class CellLog:
    """Appends one line per cell run: when, which kernel, the cell's id and source digest, and whether it raised."""

    def __init__(self, workspace_path: Path):
        self.workspace = workspace_path
        self.path = folder(workspace_path) / CELLS_LOG
        self.kernel = secrets.token_hex(4)
        self._checked = 0.0

    def after_cell(self, result) -> None:
        try:
            info = result.info
            source = info.raw_cell or ""
            if info.silent or not source.strip():
                return
            error = result.error_before_exec or result.error_in_exec
            rec = {"at": now_iso(), "k": self.kernel, "id": getattr(info, "cell_id", None),
                   "sha": cell_digest(source), "ok": error is None}
            if error is not None:
                rec["error"] = f"{type(error).__name__}: {str(error)[:300]}"
            line = json.dumps(rec, ensure_ascii=False).encode("utf-8") + b"\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line)  # one write of a short line: lines from several kernels never interleave
            finally:
                os.close(fd)
            if time.monotonic() - self._checked > 30:  # a reporter that died is started again
                self._checked = time.monotonic()
                if joined(self.workspace) is not None:
                    ensure_reporter(self.workspace, os.getpid())
        except Exception:  # noqa: BLE001 - noting progress must never disturb the learner's notebook
            pass


_FOLLOWED: set[tuple[int, str]] = set()


def follow(ws=None) -> bool:
    """Note this lesson's progress for a workshop: call once at the top of a lesson (the curriculum does).

    In an IPython kernel it registers a ``post_run_cell`` callback that appends each cell run (id, digest of the
    source, passed or raised) to ``<workspace>/classroom/cells.jsonl``: microseconds, no network, never an error.
    When the workspace has joined a workshop it also makes sure a reporter runs. Outside a kernel it does
    nothing and returns False."""
    shell = None
    if "IPython" in sys.modules:
        from IPython import get_ipython
        shell = get_ipython()
    if shell is None or not hasattr(shell, "events"):
        return False
    path = _workspace_path(ws)
    key = (id(shell), str(path))
    if key not in _FOLLOWED:
        _FOLLOWED.add(key)
        log = CellLog(path)
        log._checked = time.monotonic()
        shell.events.register("post_run_cell", log.after_cell)
        if joined(path) is not None:
            ensure_reporter(path, os.getpid())
    return True


# ---- the reporter process ---------------------------------------------------------------------------------------
def _lock(workspace_path: Path):
    from filelock import FileLock
    return FileLock(str(folder(workspace_path) / LOCK_FILE), timeout=0)


def reporter_running(workspace_path: Path) -> bool:
    from filelock import Timeout
    lock = _lock(workspace_path)
    try:
        lock.acquire()
    except Timeout:
        return True
    lock.release()
    return False


def ensure_reporter(workspace_path, parent_pid: int | None = None) -> subprocess.Popen | None:
    """Start the workspace's reporter in the background unless one runs (the process, or None). It stops by
    itself after ``parent_pid`` (JupyterLab, a kernel) ends and what it holds has been sent or kept."""
    workspace_path = Path(workspace_path)
    if reporter_running(workspace_path):
        return None
    import cvlab
    env = dict(os.environ)
    package_root = str(Path(cvlab.__file__).resolve().parents[1])  # the same cvlab, whatever sys.path holds
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "cvlab.classroom", "report", "--workspace", str(workspace_path)]
    if parent_pid:
        cmd += ["--parent", str(parent_pid)]
    with open(folder(workspace_path) / REPORTER_LOG, "ab") as log:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, close_fds=True,
                                start_new_session=True)


# ---- `cvlab lab --join` -----------------------------------------------------------------------------------------
def with_join(configure, run):
    """``cvlab lab``'s command with ``--join URL --key KEY`` (or ``--join FILE``, the handout's env file): join
    first, then JupyterLab starts as usual and a reporter runs beside it (it stops when JupyterLab does)."""
    def configure_with_join(parser) -> None:
        configure(parser)
        parser.add_argument("--join", default=None, metavar="URL|FILE",
                            help="join a workshop: its address (with --key) or the env file from your handout; "
                                 "your course progress is then reported to your instructor")
        parser.add_argument("--key", default=None, metavar="SEAT_KEY",
                            help="your seat's training key from the handout (with --join URL)")

    def run_with_join(args, *rest, **kw):
        path = Path(args.workspace).expanduser().resolve() if args.workspace else _workspace_path().resolve()
        lab_start(path, args.join, args.key, start_reporter=not getattr(args, "dry_run", False))
        return run(args, *rest, **kw)
    return configure_with_join, run_with_join


def lab_start(workspace_path: Path, join_to: str | None = None, key: str | None = None, *,
              start_reporter: bool = True, out=None) -> Joined | None:
    """Join when asked, say where progress goes, and start the reporter for the process about to become
    JupyterLab (``cvlab lab`` replaces itself with JupyterLab, keeping its process id)."""
    out = out or sys.stdout
    if key and not join_to:
        raise CvlabError("BadRequestInvalid", "--key goes with --join URL: cvlab lab --join URL --key KEY.")
    if join_to:
        if not join_to.startswith(("http://", "https://")):
            if key:
                raise CvlabError("BadRequestInvalid", "--join FILE (an env file) already holds the key: drop --key.")
            join_to, key = read_env_file(join_to)
        elif not key:
            raise CvlabError("BadRequestInvalid", "--join URL needs your seat key too: --key KEY (on your handout).")
        print(join(workspace_path, join_to, key).message, file=out)
    j = joined(workspace_path)
    if j is None:
        return None
    if not join_to:
        print(f"Reporting your course progress to the workshop at {j.endpoint}"
              f"{f' ({j.seat})' if j.seat else ''}. To stop: cvlab.classroom.leave() or delete "
              f"{folder(workspace_path) / JOIN_FILE}.", file=out)
    if start_reporter:
        ensure_reporter(workspace_path, os.getpid())
    return j


__all__ = ["CellLog", "JoinResult", "Joined", "check_endpoint", "ensure_reporter", "folder", "follow", "join",
           "joined", "lab_start", "leave", "read_env_file", "reporter_running", "status", "whoami", "with_join"]

"""JupyterHub for a class larger than one laptop: every hub user gets a workshop seat, its key, their own
workspace and the curriculum (``deploy/jupyterhub/jupyterhub_config.py`` calls ``configure``).

- The seats come from ``cvlab workshop handout --format json`` (a file the hub can read: on The Littlest
  JupyterHub a path on the machine, on Kubernetes a mounted Secret) or straight from the instructor's workspace.
- A user is given a seat the first time their server starts (``assign``: first come, first served, kept in a JSON
  file, or fixed by a roster ``username,seat``); the room full is a clear error on the spawn page.
- ``pre_spawn_hook`` puts the workshop's address and the seat's key in the server's environment
  (``CVLAB_WORKSHOP_URL`` / ``CVLAB_WORKSHOP_KEY``); the learner's course then reports like a joined laptop.
- The server runs ``python -m cvlab.classroom singleuser``: it makes ``~/cvlab-workspace`` (or
  ``$CVLAB_WORKSPACE``) with the sample projects and the learner's copies of the lessons, starts the reporter, then
  becomes ``jupyterhub-singleuser`` on the lessons' folder.
"""
from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

from cvlab.errors import CvlabError

from .outbox import write_atomic

SINGLEUSER = ("python", "-m", "cvlab.classroom", "singleuser")
DEFAULT_URL = "/lab/tree/00-welcome.ipynb"
WORKSPACE_DIR = "cvlab-workspace"


def load_seats(source: str | os.PathLike) -> list[dict]:
    """Seats as ``cvlab workshop handout --format json`` writes them, from that file or an instructor's
    workspace folder."""
    path = Path(source)
    if path.is_dir():
        from cvlab import workshop
        from cvlab.workspace import Workspace
        ws = Workspace(path, create=False)
        try:
            return json.loads(workshop.handout(ws, fmt="json"))
        finally:
            ws.close()
    try:
        seats = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CvlabError("NotFound", f"Cannot read the workshop seats from {path} ({e}): write them with "
                         "`cvlab workshop handout --format json --out seats.json`.") from None
    if not isinstance(seats, list) or not all(isinstance(s, dict) and {"seat", "training_key"} <= set(s)
                                              for s in seats):
        raise CvlabError("BadRequestInvalid", f"{path} is not a seat list from `cvlab workshop handout --format "
                         "json`.")
    return seats


def read_roster(path: str | os.PathLike | None) -> dict[str, str]:
    """``username,seat`` lines (a header line is allowed): users who must get a given seat."""
    if not path:
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    if rows and rows[0][:2] == ["username", "seat"]:
        rows = rows[1:]
    return {r[0].strip(): r[1].strip() for r in rows if len(r) >= 2}


def assign(username: str, seats: list[dict], assignments: str | os.PathLike,
           roster: dict[str, str] | None = None) -> dict:
    """The seat of ``username``: the roster's, the one given before, else the first free one (kept in the
    ``assignments`` JSON file, under a lock, so two servers starting at once never share a seat)."""
    from filelock import FileLock
    by_name = {s["seat"]: s for s in seats}
    path = Path(assignments)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=30):
        try:
            given = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            given = {}
        wanted = (roster or {}).get(username) or given.get(username)
        if wanted:
            if wanted not in by_name:
                raise CvlabError("NotFound", f"{username}'s seat {wanted!r} is not in the workshop's seat list: "
                                 "add seats with `cvlab workshop create` and export the list again.")
        else:
            taken = set(given.values()) | set((roster or {}).values())
            free = [s["seat"] for s in seats if s["seat"] not in taken]
            if not free:
                raise CvlabError("Conflict", f"Every workshop seat is taken ({len(seats)}): the instructor adds "
                                 "seats with `cvlab workshop create --seats N` and exports the list again.")
            wanted = free[0]
        if given.get(username) != wanted:
            given[username] = wanted
            write_atomic(path, json.dumps(given, indent=1, sort_keys=True).encode(), 0o600)
    return by_name[wanted]


def pre_spawn_hook(seats: str | os.PathLike, assignments: str | os.PathLike, *, workshop_url: str | None = None,
                   roster: str | os.PathLike | None = None):
    """A ``Spawner.pre_spawn_hook``: the user's seat, key and workshop address into the server's environment."""
    from .learner import ENV_KEY, ENV_URL, check_endpoint

    def hook(spawner) -> None:
        seat = assign(spawner.user.name, load_seats(seats), assignments, read_roster(roster))
        url = check_endpoint(workshop_url or seat["endpoint"])
        spawner.environment.update({ENV_URL: url, ENV_KEY: seat["training_key"]})
        spawner.log.info("cvlab: %s has workshop seat %s at %s", spawner.user.name, seat["seat"], url)
    return hook


def configure(c, *, seats: str | os.PathLike, assignments: str | os.PathLike, workshop_url: str | None = None,
              roster: str | os.PathLike | None = None, python: str = "python") -> None:
    """Set a JupyterHub config ``c`` up for a cvlab workshop (see the module docstring). ``python`` is the user
    servers' interpreter (the one cvlab is installed in, e.g. /opt/tljh/user/bin/python)."""
    c.Spawner.pre_spawn_hook = pre_spawn_hook(seats, assignments, workshop_url=workshop_url, roster=roster)
    c.Spawner.cmd = [python, *SINGLEUSER[1:]]
    c.Spawner.default_url = DEFAULT_URL


def _lessons(workspace: Path) -> Path:
    """The learner's own copies of the lessons in the workspace (never overwritten once there)."""
    try:
        from cvlab.course import prepare_lessons
    except ImportError:  # before the curriculum's course module: the learner versions, written once
        from cvlab import notebook_versions as nv
        folder = workspace / "notebooks"
        if not folder.exists():
            nv.write_versions(folder, "learner")
        return folder
    return prepare_lessons(workspace, "learner").folder


def singleuser(argv: list[str]) -> int:
    """The user's server on the hub: workspace, sample projects, lessons, reporter, then jupyterhub-singleuser."""
    from cvlab import config, lab
    from cvlab.workspace import Workspace

    from .learner import ensure_reporter, joined
    settings = config.settings()
    workspace = settings.workspace if settings.is_set("workspace") else Path.home() / WORKSPACE_DIR
    workspace = Path(workspace).expanduser().resolve()
    ws = Workspace(workspace)
    try:
        lab.seed_once(ws)
    finally:
        ws.close()
    lessons = _lessons(workspace)
    os.environ[config.Settings.workspace.env] = str(workspace)  # the kernels' workspace
    j = joined(workspace)
    print(f"cvlab: workspace {workspace}, lessons {lessons}; "
          f"{f'reporting to {j.endpoint}' if j else 'not joined to a workshop'}", flush=True)
    if j is not None:
        ensure_reporter(workspace, os.getpid())  # this process becomes the server, keeping its id
    beside = Path(sys.executable).with_name("jupyterhub-singleuser")  # the same environment as this cvlab
    cmd = [str(beside) if beside.exists() else "jupyterhub-singleuser", f"--ServerApp.root_dir={lessons}", *argv]
    sys.stdout.flush()
    os.execvp(cmd[0], cmd)
    return 0  # pragma: no cover


__all__ = ["DEFAULT_URL", "SINGLEUSER", "assign", "configure", "load_seats", "pre_spawn_hook", "read_roster",
           "singleuser"]

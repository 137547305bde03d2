"""``cvlab lab``: make sure the workspace exists (seeded once with the sample projects) and open JupyterLab on the
notebook curriculum with CVLAB_WORKSPACE pointing at it."""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from cvlab import lab
from cvlab.config import Settings
from cvlab.workspace import Workspace, default_workspace_path


def configure(parser) -> None:
    """The arguments of ``cvlab lab``."""
    parser.add_argument("--workspace", default=None, help="workspace folder (default: $CVLAB_WORKSPACE or ./workspace)")
    parser.add_argument("--no-browser", action="store_true", help="don't open a browser tab")
    parser.add_argument("--port", type=int, default=None, help="JupyterLab port (default: Jupyter's choice)")
    parser.add_argument("--no-seed", action="store_true", help="don't add the sample projects")
    parser.add_argument("--dry-run", action="store_true", help="prepare the workspace, print the command, don't start")


def run(args) -> int:
    """Prepare the workspace, then replace this process with JupyterLab."""
    path = Path(args.workspace).expanduser().resolve() if args.workspace else default_workspace_path().resolve()
    ws = Workspace(path)
    try:
        if not args.no_seed:
            lab.seed_once(ws)
    finally:
        ws.close()
    notebooks = lab.find_notebooks()
    cmd = lab.jupyter_command(notebooks, args.port, args.no_browser)
    env = dict(os.environ, **{Settings.workspace.env: str(path)})  # the JupyterLab process's setting
    print(f"Workspace: {path}\nNotebooks: {notebooks}")
    if args.dry_run:
        print("CVLAB_WORKSPACE=" + shlex.quote(str(path)) + " " + shlex.join(cmd))
        return 0
    sys.stdout.flush()
    os.execve(cmd[0], cmd, env)  # replaces this process; Ctrl+C stops JupyterLab
    return 0  # pragma: no cover


# workshop mode (issue 21): `--join URL --key KEY` or `--join FILE`, then a reporter beside JupyterLab
from cvlab.classroom.learner import with_join  # noqa: E402

configure, run = with_join(configure, run)

"""What ``cvlab lab`` needs from the core: where the curriculum's notebooks are, the sample projects seeded once,
and the JupyterLab command line (the command itself is ``cvlab.cli.lab``)."""
from __future__ import annotations

import sys
from pathlib import Path

from .errors import CvlabError
from .workspace import Workspace

SEEDED_SETTING = "lab_seeded"


def find_notebooks(cwd: Path | None = None) -> Path:
    """The repo's notebooks/ folder: next to the package (source checkout), else under the current directory."""
    candidates = [Path(__file__).resolve().parent.parent / "notebooks", (cwd or Path.cwd()) / "notebooks"]
    for c in candidates:
        if c.is_dir():
            return c
    raise CvlabError("NotFound", "No notebooks/ folder found next to the cvlab package or in the current "
                                 f"directory (looked in {', '.join(map(str, candidates))}). Run `cvlab lab` from "
                                 "the cvlab repository.")


def seed_once(ws: Workspace, out=None) -> bool:
    """Seed the sample projects the first time; True when it did."""
    from .datasets import seed_default_workspace

    out = out or sys.stdout
    if ws.get_setting(SEEDED_SETTING):
        return False
    print(f"Seeding {ws.path} with the sample projects (first run only)...", file=out)
    seed_default_workspace(ws)
    ws.set_setting(SEEDED_SETTING, True)
    return True


def jupyter_command(notebooks: Path, port: int | None, no_browser: bool) -> list[str]:
    cmd = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={notebooks}"]
    if port:
        cmd.append(f"--port={port}")
    if no_browser:
        cmd.append("--no-browser")
    return cmd

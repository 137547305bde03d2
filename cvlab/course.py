"""The learner's course: working copies of the lessons inside the workspace, and JupyterLab started on them.

`cvlab lab` (and `make lab`) calls :func:`run`. The lessons in the repository's ``notebooks/`` are never opened
directly: running them would write outputs into git-tracked files. Instead the first run copies them into
``<workspace>/notebooks/``; later runs keep the learner's copies as they are (new lessons are added, changed ones
are reported) and ``--reset-notebooks`` brings fresh ones after moving the old copies aside.

Two versions come from the same source (:mod:`cvlab.notebook_versions` reads the cell tags):

* ``learner`` (the default): every exercise cell is blank but for its instructions and a ``# TODO``; the cell
  after it checks the work and says what to fill in; a "Show a solution" fold under the exercise reveals the
  instructor's code when the learner asks for it.
* ``instructor``: the lessons as written, solutions in place.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import os
import secrets
import shlex
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import notebook_versions as nv
from .errors import CvlabError

LESSONS_DIR = "notebooks"            # inside the workspace
START = "00-welcome.ipynb"           # what JupyterLab opens first
# Put first on JUPYTER_CONFIG_PATH: turns nbgrader's server parts and menus off in the course (see its README)
JUPYTER_CONFIG = Path(__file__).parent / "jupyter_config"
STAMP = ".cvlab-lessons.json"        # which version was copied, and each source's hash then
VERSIONS = nv.VERSIONS               # ("learner", "instructor")
REVEAL_TAG = "reveal"                # the "Show a solution" cell under a blanked exercise


# ------------------------------------------------------------------------------------------ the lessons
def lesson_sources(source: str | Path | None = None) -> list[Path]:
    """The lessons, in order: ``NN-*.ipynb`` in the curriculum folder, or the jupytext ``NN-*.py`` source where a
    lesson has no notebook file."""
    from .lab import find_notebooks

    folder = Path(source) if source else find_notebooks()
    by_stem: dict[str, Path] = {p.stem: p for p in folder.glob("[0-9][0-9]-*.py")}
    by_stem.update({p.stem: p for p in folder.glob("[0-9][0-9]-*.ipynb")})
    if not by_stem:
        raise CvlabError("NotFound", f"No lessons (NN-name.ipynb) in {folder}.")
    return [by_stem[s] for s in sorted(by_stem)]


def read_lesson(path: Path):
    """A lesson as an nbformat v4 notebook (an ``.ipynb`` file, or a jupytext percent-format ``.py``)."""
    if path.suffix == ".py":
        import jupytext

        nb = jupytext.read(path)
    else:
        nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):  # ids keep the learner, instructor and source cells matched
        cell.setdefault("id", f"{path.stem[:2]}-{i:02d}")
    return nb


def _reveal_cell(exercise) -> nbformat.NotebookNode:
    """A folded Markdown cell holding an exercise's solution: the learner opens it only when stuck."""
    code = "\n".join(nv.solution_lines(exercise))
    body = html.escape(code, quote=False)
    cell = nbformat.v4.new_markdown_cell(
        "<details><summary><b>Show a solution</b> (try the exercise first)</summary>\n\n"
        f"<pre><code>{body}</code></pre>\n\n</details>")
    cell.metadata["tags"] = [REVEAL_TAG]
    cell.id = f"{exercise.get('id', 'ex')}-reveal"[:64]
    return cell


def learner_copy(nb):
    """The self-study version: exercises blanked (:func:`notebook_versions.learner_version`), each followed by a
    folded solution the learner can open."""
    blank = nv.learner_version(nb)
    solutions = {c.get("id"): c for c in nb.cells if nv.is_exercise(c)}
    cells = []
    for cell in blank.cells:
        cells.append(cell)
        if cell.get("id") in solutions:
            cell.source = cell.source.replace(nv.TODO, nv.TODO + "\n# Stuck? Open \"Show a solution\" below.")
            cells.append(_reveal_cell(solutions[cell.get("id")]))
    blank.cells = cells
    return blank


def make_version(nb, version: str):
    if version == "learner":
        return learner_copy(nb)
    if version == "instructor":
        return nv.instructor_version(nb)
    raise CvlabError("BadRequestInvalid", f"version {version!r}: use learner or instructor.")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@dataclass
class LessonsReport:
    """What :func:`prepare_lessons` did, for the launcher to print."""

    folder: Path
    version: str
    written: list[str] = field(default_factory=list)      # copied now (first run, a new lesson, a reset)
    kept: list[str] = field(default_factory=list)         # the learner's copies, left as they were
    changed: list[str] = field(default_factory=list)      # lessons updated in the course since they were copied
    backup: Path | None = None                            # where a reset moved the old copies
    version_kept: str | None = None                       # the copies' version when another one was asked for

    def lines(self) -> list[str]:
        out = [f"Lessons ({self.version} version): {self.folder}"]
        if self.backup:
            out.append(f"  fresh copies made; your previous ones are in {self.backup}")
        elif self.written and not self.kept:
            out.append(f"  {len(self.written)} lessons copied (first run); your work in them stays yours")
        elif self.written:
            out.append(f"  new lessons added: {', '.join(self.written)}")
        if self.version_kept:
            out.append(f"  your copies are the {self.version_kept} version and were kept; to switch, run "
                       f"`cvlab lab --reset-notebooks --version {self.version}`")
        if self.changed:
            out.append(f"  updated in the course since you copied them: {', '.join(self.changed)}; "
                       "`cvlab lab --reset-notebooks` brings fresh copies (yours are moved aside, not deleted)")
        return out


def prepare_lessons(workspace: str | Path, version: str = "learner", *, reset: bool = False,
                    source: str | Path | None = None) -> LessonsReport:
    """Make (or keep) the learner's working copies in ``<workspace>/notebooks/``.

    A copy that exists is never overwritten: the learner's answers and outputs live there. ``reset=True`` moves
    the whole folder to ``<workspace>/notebooks-backup-<UTC time>/`` first, then writes fresh copies.
    """
    if version not in VERSIONS:
        raise CvlabError("BadRequestInvalid", f"version {version!r}: use learner or instructor.")
    folder = Path(workspace) / LESSONS_DIR
    report = LessonsReport(folder=folder, version=version)
    stamp_path = folder / STAMP
    stamp = json.loads(stamp_path.read_text()) if stamp_path.is_file() else {}
    if reset and folder.exists():
        when = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        report.backup = folder.with_name(f"{LESSONS_DIR}-backup-{when}")
        folder.rename(report.backup)
        stamp = {}
    folder.mkdir(parents=True, exist_ok=True)
    if stamp.get("version", version) != version:
        report.version_kept, version = stamp["version"], stamp["version"]
    hashes = dict(stamp.get("sources", {}))
    for path in lesson_sources(source):
        target = folder / f"{path.stem}.ipynb"
        digest = _digest(path)
        if target.exists():
            report.kept.append(target.name)
            if hashes.get(path.stem) not in (None, digest):
                report.changed.append(target.name)
            continue
        made = make_version(read_lesson(path), version)
        nbformat.validate(made)
        tmp = target.with_suffix(".ipynb.tmp")
        nbformat.write(made, tmp)
        os.replace(tmp, target)
        hashes[path.stem] = digest
        report.written.append(target.name)
    stamp_path.write_text(json.dumps({"version": version, "sources": hashes}, indent=1))
    return report


# ------------------------------------------------------------------------------------ executing the lessons
WARNING_WORDS = ("Warning:", "WARNING:", "warnings.warn(")  # how a Python or native warning reads in an output


def _cpu_seconds(proc) -> float:
    """User + system CPU of the kernel and its live children (a server a cell starts counts too)."""
    import psutil

    if proc is None:
        return 0.0
    total = 0.0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            t = p.cpu_times()
            total += t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
    except psutil.Error:
        pass
    return total


def _output_text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "\n".join(output.get("traceback", []))
    return str(output.get("data", {}).get("text/plain", ""))


def execute_lesson(path: Path, *, timeout: float = 1800, kernel: str = "python3") -> dict:
    """Run one lesson top to bottom in a fresh kernel (in its own folder, as JupyterLab would) and report per cell:
    wall and CPU seconds, first code line, stderr streams and warnings printed. ``{"seconds", "cpu_seconds",
    "error", "cells": [...]}``; the executed notebook is not written anywhere."""
    import time

    import psutil
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    cells: list[dict] = []
    state = {"proc": None, "start": (0.0, 0.0)}

    def kernel_process():
        if state["proc"] is None:
            try:
                state["proc"] = psutil.Process(client.km.provisioner.process.pid)
            except Exception:  # noqa: BLE001 - no local kernel process: CPU is not measured
                pass
        return state["proc"]

    def started(cell, cell_index):
        state["start"] = (time.perf_counter(), _cpu_seconds(kernel_process()))

    def done(cell, cell_index, execute_reply):
        wall = time.perf_counter() - state["start"][0]
        cpu = _cpu_seconds(kernel_process()) - state["start"][1]
        outputs = cell.get("outputs", [])
        first = next((ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("#")), "")
        cells.append({"index": cell_index, "id": cell.get("id"), "first_line": first[:90],
                      "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
                      "stderr": [o.get("text", "")[:500] for o in outputs
                                 if o.get("output_type") == "stream" and o.get("name") == "stderr"],
                      "warnings": [_output_text(o)[:500] for o in outputs
                                   if any(w in _output_text(o) for w in WARNING_WORDS)]})

    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, resources={"metadata": {"path": str(path.parent)}},
                            on_cell_start=started, on_cell_executed=done)
    t0, error = time.perf_counter(), None
    try:
        client.execute()
    except Exception as exc:  # noqa: BLE001 - a failing lesson is a result too
        error = f"{type(exc).__name__}: {str(exc)[-1500:]}"
    return {"seconds": round(time.perf_counter() - t0, 1),
            "cpu_seconds": round(sum(c["cpu_seconds"] for c in cells), 1), "error": error, "cells": cells}


# -------------------------------------------------------------------------------------------- JupyterLab
def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Launch:
    """How JupyterLab is started: the command, its environment, and the URL the learner opens."""

    command: list[str]
    env: dict
    url: str
    notes: tuple[str, ...]


def jupyter_launch(lessons: Path, workspace: Path, *, port: int | None = None, open_browser: bool = True,
                   host: str = "127.0.0.1", token: str | None = None, as_root: bool | None = None) -> Launch:
    """The JupyterLab command on the lesson folder, opening the welcome lesson, on 127.0.0.1 with a fresh token.

    The token goes through the environment (``JUPYTER_TOKEN``), not the command line other users can read.
    As root (containers, cloud VMs, WSL) Jupyter refuses to start without ``--allow-root``: it is passed, and said.
    nbgrader's server extensions and menus are turned off (``JUPYTER_CONFIG``).
    """
    port = port or int(os.environ.get("JUPYTER_PORT") or 0) or free_port(host)
    token = token or secrets.token_hex(24)
    as_root = running_as_root() if as_root is None else as_root
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={lessons}", f"--ServerApp.ip={host}",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--LabApp.default_url=/lab/tree/{START}"]
    if not open_browser:
        cmd.append("--no-browser")
    notes = []
    if as_root:
        cmd.append("--allow-root")
        notes.append("Running as root (a container, a cloud VM or WSL): passing --allow-root to JupyterLab, which "
                     "otherwise refuses to start. Use a normal user account where you can.")
    from .config import Settings

    env = dict(os.environ, **{Settings.workspace.env: str(workspace)}, JUPYTER_TOKEN=token,
               JUPYTER_CONFIG_PATH=os.pathsep.join(filter(None, [str(JUPYTER_CONFIG),
                                                                 os.environ.get("JUPYTER_CONFIG_PATH")])))
    url = f"http://{host}:{port}/lab/tree/{START}?token={token}"
    return Launch(cmd, env, url, tuple(notes))


# ---------------------------------------------------------------------------------------------- command
def configure(parser) -> None:
    parser.add_argument("--workspace", default=None, help="workspace folder (default: $CVLAB_WORKSPACE or ./workspace)")
    parser.add_argument("--no-browser", action="store_true", help="don't open a browser tab")
    parser.add_argument("--port", type=int, default=None, help="JupyterLab port (default: $JUPYTER_PORT, else a free one)")
    parser.add_argument("--no-seed", action="store_true", help="don't add the sample projects")
    parser.add_argument("--version", choices=VERSIONS, default="learner",
                        help="learner: blank exercises with a check and a folded solution (default); "
                             "instructor: solutions in place")
    parser.add_argument("--reset-notebooks", action="store_true",
                        help="fresh copies of the lessons (your current copies are moved aside, not deleted)")
    parser.add_argument("--dry-run", action="store_true", help="prepare the lessons, print the command, don't start")


def run(args, out=None) -> int:
    from .lab import seed_once
    from .workspace import Workspace, default_workspace_path

    out = out or sys.stdout
    path = Path(args.workspace).expanduser().resolve() if args.workspace else default_workspace_path().resolve()
    ws = Workspace(path)
    try:
        if not args.no_seed:
            seed_once(ws, out=out)
    finally:
        ws.close()
    report = prepare_lessons(path, args.version, reset=args.reset_notebooks)
    launch = jupyter_launch(report.folder, path, port=args.port, open_browser=not args.no_browser)
    print(f"Workspace: {path}", file=out)
    print("\n".join(report.lines()), file=out)
    for note in launch.notes:
        print("Note: " + note, file=out)
    if args.dry_run:
        print(f"CVLAB_WORKSPACE={shlex.quote(str(path))} JUPYTER_TOKEN=... " + shlex.join(launch.command), file=out)
        return 0
    print(f"\nOpen the course at:\n    {launch.url}\n(Ctrl+C stops JupyterLab.)\n", file=out, flush=True)
    if not shutil.which(launch.command[0]) and not Path(launch.command[0]).exists():  # pragma: no cover
        raise CvlabError("NotFound", f"{launch.command[0]} not found: run `make lab` to create the environment.")
    os.execve(launch.command[0], launch.command, launch.env)  # replaces this process; Ctrl+C stops JupyterLab
    return 0  # pragma: no cover

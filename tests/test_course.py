"""The learner's course (`cvlab lab`, `make lab`): working copies of the lessons in the workspace, and a real
JupyterLab serving 00-welcome on 127.0.0.1, as root too.

Reproduces issue 18's first three findings: `make lab` stopping at "Running as root is not recommended", landing
on the file browser (which showed `_build.py`), the tracked notebooks being written by the course, and the
exercises arriving already solved.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from cvlab import course
from cvlab import notebook_versions as nv

ROOT = Path(__file__).resolve().parent.parent


def _source_dir(tmp_path: Path) -> Path:
    """Two small lessons with an exercise, its check and a solution-only cell, like the curriculum's."""
    src = tmp_path / "src"
    src.mkdir()
    for stem in ("00-welcome", "01-next"):
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_markdown_cell(f"# {stem}"),
            nbformat.v4.new_code_cell("# Exercise: put 2 + 2 into four.\nfour = 2 + 2 if 1 < 2 else 0",
                                      metadata={"tags": ["exercise"]}),
            nbformat.v4.new_code_cell('assert "four" in globals(), "fill in the exercise cell above, then run it"'),
            nbformat.v4.new_markdown_cell("Why four: arithmetic.", metadata={"tags": ["solution"]}),
        ]
        for i, c in enumerate(nb.cells):
            c.id = f"{stem[:2]}-{i:02d}"
        nbformat.write(nb, src / f"{stem}.ipynb")
    return src


def test_learner_copies_are_blank_with_a_check_and_a_folded_solution(tmp_path):
    report = course.prepare_lessons(tmp_path / "ws", "learner", source=_source_dir(tmp_path))
    assert report.written == ["00-welcome.ipynb", "01-next.ipynb"] and not report.kept
    src = nbformat.read(tmp_path / "src" / "00-welcome.ipynb", as_version=4)
    copy = nbformat.read(report.folder / "00-welcome.ipynb", as_version=4)
    assert nv.check_learner(src, copy) == []                      # no solution code, no solution-only cell
    exercise = next(c for c in copy.cells if nv.is_exercise(c))
    assert nv.TODO in exercise.source and "four =" not in exercise.source
    reveal = copy.cells[copy.cells.index(exercise) + 1]
    assert course.REVEAL_TAG in reveal.metadata["tags"] and reveal.cell_type == "markdown"
    assert "<details>" in reveal.source and "four = 2 + 2 if 1 &lt; 2 else 0" in reveal.source  # escaped
    check = copy.cells[copy.cells.index(reveal) + 1]
    assert "fill in the exercise cell above" in check.source      # the check that says what to fill in


def test_instructor_copies_keep_the_solutions(tmp_path):
    report = course.prepare_lessons(tmp_path / "ws", "instructor", source=_source_dir(tmp_path))
    src = nbformat.read(tmp_path / "src" / "01-next.ipynb", as_version=4)
    assert nbformat.read(report.folder / "01-next.ipynb", as_version=4).cells == src.cells


def test_copies_are_never_overwritten_and_a_reset_moves_them_aside(tmp_path):
    src = _source_dir(tmp_path)
    ws = tmp_path / "ws"
    first = course.prepare_lessons(ws, source=src)
    mine = first.folder / "00-welcome.ipynb"
    nb = nbformat.read(mine, as_version=4)
    nb.cells[1].source += "\nfour = 4  # my answer"
    nbformat.write(nb, mine)
    edited = mine.read_bytes()

    (src / "01-next.ipynb").write_text((src / "01-next.ipynb").read_text().replace("# 01-next", "# 01-next, v2"))
    again = course.prepare_lessons(ws, source=src)
    assert again.written == [] and again.kept == ["00-welcome.ipynb", "01-next.ipynb"]
    assert again.changed == ["01-next.ipynb"] and "--reset-notebooks" in "\n".join(again.lines())
    assert mine.read_bytes() == edited

    asked_other = course.prepare_lessons(ws, "instructor", source=src)  # a version switch is not a reset
    assert asked_other.version_kept == "learner" and mine.read_bytes() == edited

    reset = course.prepare_lessons(ws, reset=True, source=src)
    assert reset.backup is not None and (reset.backup / "00-welcome.ipynb").read_bytes() == edited
    assert sorted(reset.written) == ["00-welcome.ipynb", "01-next.ipynb"] and mine.read_bytes() != edited
    assert "01-next, v2" in (reset.folder / "01-next.ipynb").read_text()


def test_a_new_lesson_is_added_beside_the_kept_ones(tmp_path):
    src = _source_dir(tmp_path)
    ws = tmp_path / "ws"
    course.prepare_lessons(ws, source=src)
    (src / "02-more.ipynb").write_bytes((src / "01-next.ipynb").read_bytes())
    report = course.prepare_lessons(ws, source=src)
    assert report.written == ["02-more.ipynb"] and len(report.kept) == 2


def test_the_real_curriculum_copies_cleanly(tmp_path):
    report = course.prepare_lessons(tmp_path / "ws", "learner")
    sources = course.lesson_sources()
    assert [p.stem + ".ipynb" for p in sources] == report.written and report.written[0] == course.START
    for path in sources:
        problems = nv.check_learner(course.read_lesson(path),
                                    nbformat.read(report.folder / f"{path.stem}.ipynb", as_version=4))
        assert problems == [], (path.name, problems)
    assert sorted(p.name for p in report.folder.iterdir() if not p.name.startswith(".")) == report.written


def test_launch_passes_allow_root_only_as_root(tmp_path):
    as_root = course.jupyter_launch(tmp_path, tmp_path, port=8899, token="t", as_root=True, open_browser=False)
    assert "--allow-root" in as_root.command and as_root.notes and "--allow-root" in as_root.notes[0]
    assert as_root.url == f"http://127.0.0.1:8899/lab/tree/{course.START}?token=t"
    assert not any("t" == a or "token=t" in a for a in as_root.command)   # the token is not on the command line
    user = course.jupyter_launch(tmp_path, tmp_path, port=8899, token="t", as_root=False)
    assert "--allow-root" not in user.command and not user.notes


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError):  # not listening yet
        return 0, b""


def _serve_and_fetch(cmd: list[str], env: dict, cwd: Path, port: int, timeout: float = 150) -> tuple[str, dict]:
    """Start the launcher, wait for JupyterLab, fetch the welcome lesson's page and its contents, stop it."""
    log = cwd / "launcher.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url, page = None, b""
        end = time.monotonic() + timeout
        while time.monotonic() < end and proc.poll() is None:
            found = re.search(rf"http://127\.0\.0\.1:{port}/lab/tree/\S+\?token=\w+", log.read_text(errors="replace"))
            if found:
                url = found.group(0)
                status, page = _get(url)
                if status == 200:
                    break
            time.sleep(0.5)
        printed = log.read_text(errors="replace")
        assert url and proc.poll() is None, f"JupyterLab did not come up:\n{printed[-3000:]}"
        assert b"JupyterLab" in page or b"jupyter-config-data" in page
        token = url.rsplit("token=", 1)[1]
        base = f"http://127.0.0.1:{port}/api/contents"
        status, body = _get(f"{base}/{course.START}?content=0&token={token}")
        assert status == 200 and json.loads(body)["type"] == "notebook"
        status, body = _get(f"{base}?token={token}")
        listing = sorted(item["name"] for item in json.loads(body)["content"])
        return printed, {"url": url, "listing": listing, "page": page}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)       # the launcher's own process group, started above
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.mark.timeout(240)
def test_cvlab_lab_serves_00_welcome(tmp_path):
    port = course.free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), BROWSER="true")
    cmd = [sys.executable, "-m", "cvlab.cli", "lab", "--workspace", str(tmp_path / "ws"), "--no-seed",
           "--no-browser", "--port", str(port)]
    printed, seen = _serve_and_fetch(cmd, env, tmp_path, port)
    assert seen["url"].startswith(f"http://127.0.0.1:{port}/lab/tree/00-welcome.ipynb?token=")
    assert seen["listing"] == sorted(p.stem + ".ipynb" for p in course.lesson_sources())   # no build files
    if course.running_as_root():
        assert "passing --allow-root" in printed
    assert "Running as root is not recommended" not in printed
    assert "nbgrader" not in printed and "[E " not in printed, printed   # nbgrader's start-up error is gone
    config = json.loads(re.search(rb'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                  seen["page"], re.S).group(1))
    assert "@jupyter/nbgrader" in config["disabledExtensions"]   # and its menus


@pytest.mark.timeout(300)
def test_make_lab_serves_00_welcome(tmp_path):
    """`make lab` exactly as the README says, on this checkout, with this interpreter's environment. `-o` marks
    the environment stamp as up to date so the test never installs anything."""
    if not (Path("/usr/bin/make").exists() or Path("/bin/make").exists()):
        pytest.skip("make is not installed")
    venv = Path(sys.executable).parent.parent
    port = course.free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), CVLAB_WORKSPACE=str(tmp_path / "ws"), JUPYTER_PORT=str(port),
               BROWSER="true")  # $BROWSER=true: Python's webbrowser runs `true` instead of opening a window
    cmd = ["make", "-C", str(ROOT), "lab", f"VENV={venv}", "-o", f"{venv}/.cvlab-installed"]
    printed, seen = _serve_and_fetch(cmd, env, tmp_path, port, timeout=240)  # make lab seeds the sample projects
    assert "/lab/tree/00-welcome.ipynb" in seen["url"] and "_build.py" not in seen["listing"]
    if course.running_as_root():
        assert "passing --allow-root" in printed

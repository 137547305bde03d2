"""Every lesson, executed as a learner runs it (issue 18's "Done when"): the course's working copies (instructor
version, so the exercises are filled in) in the learner profile, in order, on one workspace, in JupyterLab's kernel.

A lesson fails on an error, on a stderr stream or on a printed warning; the tracked files of the repository stay
untouched (`git status` is the same before and after). Time is not asserted here (a test must pass on any
machine): the timings are printed (`-s`) and written to `$CVLAB_LESSON_TIMINGS` when set, and
`benchmarks/notebooks.py` checks the learner profile's goals (at most 4 minutes in all, no cell over 60 s) and
prints them as JSON.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cvlab import course

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow]


def _git_state():
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        return None
    status = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True,
                            check=True).stdout
    tracked = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((ROOT / "notebooks").iterdir())
               if p.is_file()}
    return status, tracked


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    ws = tmp_path_factory.mktemp("learner") / "ws"
    before = _git_state()
    lessons = course.prepare_lessons(ws, "instructor").folder
    env = {"CVLAB_PROFILE": "learner", "CVLAB_WORKSPACE": str(ws), "PYTHONPATH": str(ROOT)}
    saved = {k: os.environ.get(k) for k in (*env, "MPLBACKEND")}
    os.environ.update(env)
    os.environ.pop("MPLBACKEND", None)  # the kernel's own inline backend, as in JupyterLab
    try:
        results = {p.stem: course.execute_lesson(p, timeout=900) for p in sorted(lessons.glob("[0-9][0-9]-*.ipynb"))}
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    summary = {name: {"seconds": r["seconds"], "cpu_seconds": r["cpu_seconds"]} for name, r in results.items()}
    summary["total"] = {k: round(sum(r[k] for r in results.values()), 1) for k in ("seconds", "cpu_seconds")}
    print("\nlesson timings (learner profile):\n" + "\n".join(f"  {k:34s} {v['seconds']:7.1f} s wall "
                                                            f"{v['cpu_seconds']:7.1f} s CPU" for k, v in summary.items()))
    if os.environ.get("CVLAB_LESSON_TIMINGS"):
        Path(os.environ["CVLAB_LESSON_TIMINGS"]).write_text(json.dumps(results, indent=1))
    return results, before, _git_state()


@pytest.mark.timeout(3600)
def test_every_lesson_runs_cleanly_in_the_learner_profile(executed):
    results, _, _ = executed
    assert results, "no lessons found"
    problems = []
    for name, r in results.items():
        if r["error"]:
            problems.append(f"{name}: {r['error'][-800:]}")
        for c in r["cells"]:
            where = f"{name} cell {c['index']} ({c['first_line']!r})"
            if c["stderr"]:
                problems.append(f"{where} wrote to stderr: {c['stderr'][0][:300]!r}")
            if c["warnings"]:
                problems.append(f"{where} printed a warning: {c['warnings'][0][:300]!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.timeout(3600)
def test_running_the_course_leaves_git_status_clean(executed):
    _, before, after = executed
    if before is None:
        pytest.skip("not a git checkout")
    assert after == before, "running the lessons changed files tracked by git (or added untracked ones)"

"""A joined learner's course, end to end: a real Jupyter kernel runs lesson cells (with JupyterLab's cell ids, and
without, as nbclient runs them), the real reporter process sends what the workspace records, a real server stores
it, and the Class page in headless Chromium shows it. With the server killed the notebook runs on, and after a
restart of both the server and the reporter every event arrives exactly once."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from cvlab import workshop
from cvlab.classroom import board
from cvlab.classroom import learner, lessons
from cvlab.classroom.outbox import Outbox
from cvlab.classroom.reporter import PID_FILE
from cvlab.classroom.store import ClassStore
from cvlab.cli import main
from cvlab.service import start_background
from cvlab.workspace import Workspace

pytestmark = pytest.mark.timeout(600)
REPO = Path(__file__).resolve().parents[1]
COMPACT = "0732100f-1a38-4e49-a514-c9b44c697ab5"  # General (compact) classification


def _env(**extra) -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                PYTHONUNBUFFERED="1", **extra)


class Kernel:
    """A real IPython kernel; ``run`` sends one cell as JupyterLab does (its ``cellId`` in the request's metadata)
    or as nbclient does (no id), and returns the reply's status and error text."""

    def __init__(self, workspace: Path):
        from jupyter_client.manager import start_new_kernel
        self.km, self.kc = start_new_kernel(kernel_name="python3", startup_timeout=120,
                                            env=_env(CVLAB_WORKSPACE=str(workspace), CVLAB_PROFILE="fast"))

    def run(self, code: str, cell_id: str | None = None, timeout: float = 300) -> tuple[str, str]:
        msg = self.kc.session.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                                      "user_expressions": {}, "allow_stdin": False,
                                                      "stop_on_error": False},
                                  metadata={"cellId": cell_id} if cell_id else {})
        self.kc.shell_channel.send(msg)
        while True:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                content = reply["content"]
                return content["status"], f"{content.get('ename', '')}: {content.get('evalue', '')}"

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def _lesson_cells(name: str) -> dict[str, str]:
    """The real lesson's code cells by id (what a learner's working copy holds too)."""
    nb = json.loads((REPO / "notebooks" / f"{name}.ipynb").read_text())
    return {c["id"]: "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"}


def _stop_reporter(workspace: Path, sig=signal.SIGTERM) -> None:
    pid_file = workspace / "classroom" / PID_FILE
    if pid_file.exists():
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 60
        while learner.reporter_running(workspace) and time.monotonic() < deadline:
            time.sleep(0.1)


def _wait(predicate, timeout: float = 60, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


TRAIN_CELL = f"""
from cvlab.datasets.swatches import swatch_jpeg
from cvlab.training import train_project
from cvlab.workspace import ImageEntry
p = ws.create_project("colours", domain_id="{COMPACT}")
tags = {{name: ws.create_tag(p.id, name) for name in ("red", "blue")}}
ws.create_images(p.id, [ImageEntry(data=swatch_jpeg(rgb, 10 * i + k, 64), name=f"{{name}}{{i}}.jpg",
                                   tag_ids=(tags[name].id,))
                        for i in range(6) for k, (name, rgb) in enumerate((("red", (200, 30, 30)),
                                                                            ("blue", (30, 40, 200))))])
it = train_project(ws, p.id, show_progress=False)
assert it.status == "Completed", it.training_error_details
ws.publish_iteration(p.id, it.id, "fruitless", "/subscriptions/0/providers/Microsoft.CognitiveServices/accounts/laptop")
"""


@pytest.mark.slow      # the learner trains an iteration on the laptop
@pytest.mark.browser
def test_a_joined_learners_exercise_quiz_answer_and_iteration_reach_the_class_page(tmp_path):
    from test_portal_support import Portal, browser_session
    inst = Workspace(tmp_path / "instructor")
    seats = workshop.create_seats(inst, 2)
    laptop = tmp_path / "laptop"
    cells = _lesson_cells("00-welcome")
    ex = lessons.catalogue().lessons[0].exercises[0]
    kernel = None
    with start_background(inst, rate_limits=False) as handle, browser_session() as browser:
        try:
            # the one line of the handout (dry run: this test drives the kernel itself instead of JupyterLab)
            assert main(["lab", "--workspace", str(laptop), "--no-seed", "--dry-run", "--join", handle.endpoint,
                         "--key", seats[0].training_key]) == 0
            portal = Portal(browser, handle, "class-page")
            page = portal.open(handle.training_key, "#/class")
            page.get_by_role("link", name="Class").wait_for()
            row = page.locator('tr[data-seat="seat-01"]')
            row.wait_for()
            assert row.locator('td[data-column="laptop"]').inner_text() == "not joined"

            kernel = Kernel(laptop)
            assert kernel.run("from cvlab import classroom\nclassroom.follow()")[0] == "ok"  # the lesson's hook
            assert kernel.run(cells["00-05"], "00-05")[0] == "ok"          # ws = cv.workspace()
            _wait(lambda: learner.reporter_running(laptop), what="the reporter the lesson started")
            assert kernel.run("f0_projects, s0_projects = 1, 10", ex.id)[0] == "ok"  # a wrong answer first
            status, error = kernel.run(cells[ex.check_id], ex.check_id)
            assert status == "error" and "F0 2 projects" in error
            cell = row.locator(f'td[data-column="ex:{ex.id}"]')
            cell.locator("text=✗").wait_for(timeout=30_000)
            assert "F0 2 projects" in cell.get_attribute("title")
            assert kernel.run(cells[ex.id], ex.id)[0] == "ok"              # the solution
            assert kernel.run(cells[ex.check_id], ex.check_id)[0] == "ok"
            t0 = time.monotonic()
            row.locator(f'td[data-column="ex:{ex.id}"].cell-ok').wait_for(timeout=30_000)
            delays = {"exercise": time.monotonic() - t0}

            assert kernel.run("from cvlab import quiz\nquiz.record(ws, quiz.grade('eval-03', '0.5'))")[0] == "ok"
            t0 = time.monotonic()
            row.locator('td[data-column="quiz:evaluate"]', has_text="1/1").wait_for(timeout=30_000)
            delays["quiz answer"] = time.monotonic() - t0

            assert kernel.run(TRAIN_CELL) == ("ok", ": ")
            t0 = time.monotonic()
            row.locator('td[data-column="published"]', has_text="colours/fruitless").wait_for(timeout=30_000)
            delays["iteration"] = time.monotonic() - t0
            best = row.locator('td[data-column="best"]').inner_text()
            assert re.fullmatch(r"\d+\.\d%", best), best
            assert row.locator('td[data-column="laptop"]').inner_text() == "connected"
            assert row.locator('td[data-column="lesson"]').inner_text().startswith("00 · ")
            portal.shot("class page")
            print("delays from the kernel's reply to the Class page (s):", delays)
            # the 2 s goal is benchmarks/workshop_load.py's (progress-event delay p95), not asserted here: a loaded
            # machine must not fail a test that only measures time; each step above already waited for its row

            # the seat's details, and the CSV export the page downloads
            row.get_by_role("button", name="seat-01").click()
            dialog = page.get_by_role("dialog", name="Seat seat-01")
            dialog.get_by_text("colours").first.wait_for()
            expect(dialog).to_contain_text("eval-03")  # expect() retries while the seat's details arrive
            page.keyboard.press("Escape")
            with page.expect_download() as download:
                page.get_by_role("button", name="Download CSV").click()
            text = Path(download.value.path()).read_text()
            assert text.startswith("Seat,Laptop,Lesson") and "colours/fruitless" in text and "passed" in text
            portal.assert_no_errors()
            portal.close()

            # a seat's key sees no Class tab, and the page itself is refused by the server
            learner_view = Portal(browser, handle, "class-page-seat")
            page = learner_view.open(seats[1].training_key)
            assert page.get_by_role("link", name="Class").count() == 0
            page.goto(learner_view.url + "#/class")
            page.get_by_role("alert").filter(has_text="The Class page is the instructor's").wait_for()
            assert seats[0].training_key not in page.content()
            learner_view.close()
        finally:
            if kernel is not None:
                kernel.close()
            _stop_reporter(laptop)
    inst.close()


class WorkshopServer:
    """``cvlab workshop serve`` in a child process, killed without warning by ``kill()`` (a crash)."""

    def __init__(self, workspace: Path, port: int = 0):
        self.proc = subprocess.Popen([sys.executable, "-m", "cvlab.cli", "workshop", "--workspace", str(workspace),
                                      "serve", "--port", str(port), "--no-rate-limit"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=_env())
        banner = ""
        for line in self.proc.stdout:
            banner += line
            if "Press Ctrl+C" in line:
                break
        m = re.search(r"endpoint (http://\S+) for", banner)
        assert m, banner
        self.endpoint = m.group(1)
        self.port = int(self.endpoint.rsplit(":", 1)[1])

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(60)


def test_with_the_server_down_the_notebook_runs_on_and_events_arrive_once_after_restart(tmp_path):
    inst_path = tmp_path / "instructor"
    inst = Workspace(inst_path)
    seat = workshop.create_seats(inst, 1)[0]
    inst.close()
    laptop = tmp_path / "laptop"
    cells = _lesson_cells("00-welcome")
    first, second = lessons.catalogue().lessons[0].exercises[:2]
    server = WorkshopServer(inst_path)
    kernel = None
    try:
        assert learner.join(laptop, server.endpoint, seat.training_key).reachable
        kernel = Kernel(laptop)
        kernel.run("from cvlab import classroom\nclassroom.follow()")
        kernel.run(cells["00-05"])                     # as nbclient runs a lesson: no cell ids
        kernel.run(cells[first.id])
        assert kernel.run(cells[first.check_id])[0] == "ok"
        box = lambda: Outbox(laptop / "classroom")  # noqa: E731 - the reporter's outbox, read from disk
        _wait(lambda: box().last_seq >= 2 and box().waiting() == 0, what="the first events to be acknowledged")

        server.kill()                                  # the instructor's laptop crashes
        t0 = time.monotonic()
        assert kernel.run("per_topic = {}")[0] == "ok"
        assert kernel.run(cells[second.check_id])[0] == "error"        # a wrong answer, checked
        kernel.run(cells["00-11"])                                    # from cvlab import quiz
        assert kernel.run(cells[second.id])[0] == "ok"
        assert kernel.run(cells[second.check_id])[0] == "ok"
        for answer in ("0.5", "0.9", "0.5"):
            assert kernel.run(f"quiz.record(ws, quiz.grade('eval-03', '{answer}'))")[0] == "ok"
        kernel.run("p = ws.create_project('offline')\nit = ws.create_iteration(p.id, name='Iteration 1', "
                   "status='Failed', training_error_details='Cancelled')")
        ran_offline = time.monotonic() - t0
        _wait(lambda: learner.status(laptop).get("state") == "offline" and box().waiting() >= 6,
              what="the reporter to queue the offline events")

        _stop_reporter(laptop, signal.SIGKILL)       # the learner's side stops too, without a goodbye
        assert not learner.reporter_running(laptop)
        kernel.run("quiz.record(ws, quiz.grade('eval-03', '0.5'))")  # one more while nothing runs
        server = WorkshopServer(inst_path, port=server.port)           # the same address, restarted
        assert learner.ensure_reporter(laptop) is not None
        _wait(lambda: box().waiting() == 0 and box().last_seq >= 9, timeout=120, what="the outbox to drain")

        sent = box()
        store = ClassStore(Workspace(inst_path))
        rows = store._db().execute("SELECT stream, seq, key, type FROM events WHERE seat = 'seat-01' ORDER BY seq"
                                   ).fetchall()
        assert [r[1] for r in rows] == list(range(1, sent.last_seq + 1))   # every event, each once, in order
        assert [r[2] for r in rows] == [e.key for e in sent.events]
        kinds = [r[3] for r in rows]
        assert kinds.count("quiz") == 4 and kinds.count("exercise") == 3 and kinds.count("iteration") == 1
        details = board.progress(Workspace(inst_path), details=True)["rows"][0]["details"]
        assert details["exercises"][first.id]["passed"] and details["exercises"][second.id]["passed"]
        assert details["exercises"][second.id]["failed"] == 1 and len(details["quiz"]) == 4
        assert [i["status"] for i in details["iterations"]] == ["Failed"]
        store.close()
        print(f"cells run while the server was down: {ran_offline:.2f} s")
    finally:
        if kernel is not None:
            kernel.close()
        _stop_reporter(laptop)
        server.kill()

"""Workshop reporting without a browser: the lesson catalogue from cell tags, the outbox and the server's store
keeping every event exactly once, the Class table's alerts, the seat key's limits over HTTP, joining with
`cvlab lab --join`, and the instructor's commands (create, handout, progress, reset, rotate-keys, serve)."""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import pty
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from cvlab import quiz, workshop
from cvlab.classroom import board as B
from cvlab.classroom import lessons, learner
from cvlab.classroom.outbox import Outbox
from cvlab.classroom.reporter import Reporter
from cvlab.classroom.store import ClassStore
from cvlab.cli import COMMANDS, load_command, main
from cvlab.service import start_background
from cvlab.workspace import Workspace

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[1]


def _cell(kind, source, tags=(), cid=None):
    return {"cell_type": kind, "source": source, "metadata": {"tags": list(tags)}, "id": cid}


def test_catalogue_pairs_each_exercise_with_its_check():
    cells = [_cell("markdown", "# 42 · Answers\nintro", cid="m"), _cell("code", "import os", cid="a"),
             _cell("code", "# Exercise: set x to 1\nx = 1", ["exercise"], "ex1"),
             _cell("code", "assert x == 1", cid="chk1"),
             _cell("code", "# Exercise: y\ny = 2", ["exercise"], "ex2"),
             _cell("code", "# Exercise: z\nz = 3", ["exercise"], "ex3"),  # an exercise right after: no check for ex2
             _cell("code", "assert z == 3", cid="chk3")]
    lesson, places = lessons.lesson_from_cells("42-answers", cells)
    assert (lesson.number, lesson.title, lesson.code_cells) == ("42", "42 · Answers", 6)
    assert [(e.id, e.check_id, e.number, e.title) for e in lesson.exercises] == [
        ("ex1", "chk1", 1, "set x to 1"), ("ex3", "chk3", 2, "z")]
    assert [p.role for _, _, p in places] == ["code", "exercise", "check", "code", "exercise", "check"]
    assert places[2][1] == lessons.cell_digest("assert x == 1\r\n\n")  # line ends and blank lines do not count
    # an explicit `check` tag wins over "the next code cell"
    cells[3]["metadata"]["tags"] = []
    cells.insert(4, _cell("code", "assert x > 0", ["check"], "chk1b"))
    lesson, _ = lessons.lesson_from_cells("42-answers", cells)
    assert [e.check_id for e in lesson.exercises] == ["chk1b"]
    # the real curriculum: every lesson's exercises are checked, and a cell is found by id or by source
    cat = lessons.catalogue()
    assert cat.lessons and all(lesson.exercises for lesson in cat.lessons)
    ex = cat.lessons[0].exercises[0]
    by_id = cat.place(ex.check_id, "no such digest")
    by_source = cat.place(None, ex.check_digest)
    assert by_id == by_source and by_id[0].exercise == ex and by_id[0].role == "check"


def _events(n, start=1, kind="quiz"):
    return [{"seq": i, "key": f"k{i}", "type": kind, "at": "2026-01-05T10:00:00+00:00",
             "data": {"question": "eval-03", "points": 1.0, "max_points": 1, "correct": True}}
            for i in range(start, start + n)]


def test_outbox_and_store_keep_every_event_exactly_once(tmp_path):
    ws = Workspace(tmp_path / "inst")
    store = ClassStore(ws)
    box = Outbox(tmp_path / "laptop")
    for i in range(5):
        assert box.add("quiz", f"k{i + 1}", "2026-01-05T10:00:00+00:00", {"i": i}).seq == i + 1
    assert box.add("quiz", "k3", "2026-01-05T10:00:00+00:00", {}) is None  # the same fact is queued once
    batch = [e.wire() for e in box.pending()]
    assert store.ingest("seat-01", {"stream": box.stream, "events": batch[:3]}) == {"acked": 3, "stored": 3}
    # the answer was lost on the way back: the client sends the whole batch again, the server keeps 2 more
    assert store.ingest("seat-01", {"stream": box.stream, "events": batch}) == {"acked": 5, "stored": 2}
    assert store.ingest("seat-01", {"stream": box.stream, "events": batch}) == {"acked": 5, "stored": 0}
    assert store.count("seat-01") == 5
    # a gap is never filled out of order
    assert store.ingest("seat-01", {"stream": box.stream, "events": _events(2, start=7)})["acked"] == 5
    box.ack(5)
    # the outbox survives a restart: same stream, same acknowledgement, and a torn last line is skipped
    with open(box.path, "ab") as f:
        f.write(b'{"seq": 6, "key": "half')
    again = Outbox(tmp_path / "laptop")
    assert (again.stream, again.acked, again.last_seq, again.pending()) == (box.stream, 5, 5, [])
    ev = again.add("quiz", "k6", "2026-01-05T10:01:00+00:00", {})
    assert ev.seq == 6 and Outbox(tmp_path / "laptop").last_seq == 6
    # a learner who deleted the outbox starts a new stream: facts already held (same key) are not kept twice
    assert store.ingest("seat-01", {"stream": "another-stream", "events": _events(6)}) == {"acked": 6, "stored": 1}
    # a reset forgets the events but not how far each stream got
    assert store.delete_seat("seat-01") == 6 and store.count() == 0
    assert store.ingest("seat-01", {"stream": box.stream, "events": batch})["stored"] == 0
    for bad, why in (({"stream": "x", "events": []}, "stream"), ({"stream": box.stream, "events": [{"seq": 0}]},
                                                                   "seq"),
                     ({"stream": box.stream, "events": [{**_events(1)[0], "type": "nope"}]}, "type"),
                     ({"stream": box.stream, "events": [{**_events(1)[0], "at": "yesterday"}]}, "at")):
        with pytest.raises(workshop.CvlabError) as e:
            store.ingest("seat-01", bad)
        assert why in e.value.message
    store.close()
    ws.close()


def test_class_table_flags_idle_and_stuck_seats(tmp_path):
    ws = Workspace(tmp_path / "inst")
    workshop.create_seats(ws, 3)
    ex = lessons.catalogue().lessons[0].exercises[0]
    t0 = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)

    def ev(seq, kind, minutes, data):
        return {"seq": seq, "key": f"{kind}{seq}", "type": kind, "at": (t0 + timedelta(minutes=minutes)).isoformat(),
                "data": data}
    failed = {"lesson": ex.lesson, "exercise": ex.id, "number": ex.number, "passed": False,
              "error": "AssertionError: Microsoft's limits page: F0 2 projects, S0 100"}
    store = ClassStore(ws)
    store.ingest("seat-01", {"stream": "stream-seat-01", "events": [
        ev(1, "lesson", 0, {"lesson": ex.lesson, "cell": 3, "cells": 10}),
        ev(2, "exercise", 1, failed), ev(3, "exercise", 2, failed), ev(4, "exercise", 3, failed),
        ev(5, "quiz", 4, {"question": "eval-03", "points": 1.0, "max_points": 1, "correct": True})]})
    store.ingest("seat-02", {"stream": "stream-seat-02", "events": [
        ev(1, "exercise", 0, failed), ev(2, "exercise", 1, {**failed, "passed": True}),
        ev(3, "quiz", 2, {"question": "eval-03", "points": 0.0, "max_points": 1, "correct": False})]})
    board = B.Board(ws, store)
    table = board.table(now=t0 + timedelta(minutes=5), idle_minutes=3, failures=3)
    rows = {r["seat"]: r for r in table["rows"]}
    assert rows["seat-01"]["alerts"] == [f"stuck on {ex.label} (3 failed checks)"]
    assert rows["seat-02"]["alerts"] == ["no progress for 3 min"]
    assert rows["seat-03"]["alerts"] == [] and rows["seat-03"]["cells"]["laptop"]["text"] == "not joined"
    cell = rows["seat-01"]["cells"][f"ex:{ex.id}"]
    assert (cell["text"], cell["state"]) == ("✗3", "fail") and "F0 2 projects" in cell["title"]
    assert rows["seat-02"]["cells"][f"ex:{ex.id}"]["text"] == "✓"
    assert rows["seat-01"]["cells"]["quiz:evaluate"]["text"] == "1/1"
    assert rows["seat-02"]["cells"]["quiz:evaluate"]["text"] == "0/1"
    assert rows["seat-01"]["cells"]["lesson"]["text"] == f"{ex.lesson} · 3/10"
    ids = [c["id"] for c in table["columns"]]
    assert ids[:4] == ["seat", "laptop", "lesson", "active"] and f"ex:{ex.id}" in ids and "quiz:evaluate" in ids
    assert ids[-3:] == ["best", "published", "alerts"]
    parsed = list(csv.DictReader(io.StringIO(B.to_csv(table))))
    assert [r["Seat"] for r in parsed] == ["seat-01", "seat-02", "seat-03"]
    assert parsed[0][f"{ex.lesson} ex {ex.number}"] == "failed x3" and parsed[1]["quiz evaluate"] == "0.0"
    text = B.to_text(table)
    assert "seat-02: no progress for 3 min" in text and "✗3" in text
    # a reset seat starts from nothing on the board too
    store.delete_seat("seat-01")
    again = {r["seat"]: r for r in board.table(now=t0 + timedelta(minutes=5), idle_minutes=3)["rows"]}
    assert again["seat-01"]["alerts"] == [] and f"ex:{ex.id}" not in again["seat-01"]["cells"]
    store.close()
    ws.close()


@pytest.fixture
def room(tmp_path):
    ws = Workspace(tmp_path / "inst")
    seats = workshop.create_seats(ws, 2)
    with start_background(ws, rate_limits=False) as handle:
        yield ws, handle, seats
    ws.close()


def test_a_seat_key_reads_neither_another_seat_nor_the_class_page(room, tmp_path):
    ws, handle, seats = room
    url = f"{handle.endpoint}/cvlab/workshop"
    one, two = ({"Training-Key": s.training_key} for s in seats)
    ok = {"stream": "stream-of-seat-1", "events": _events(2)}
    assert requests.post(f"{url}/events", json=ok, headers=one, timeout=30).json() == {
        "seat": "seat-01", "acked": 2, "stored": 2}
    assert requests.post(f"{url}/events", json=ok, headers={"Training-Key": "nope"}, timeout=30).status_code == 401
    for path in ("/progress", "/progress?format=csv", "/seats/seat-02/progress", "/seats/seat-01/progress"):
        r = requests.get(url + path, headers=one, timeout=30)
        assert r.status_code == 403 and r.json()["code"] == "Forbidden", path
        assert requests.get(url + path, timeout=30).status_code == 401, path
    for path in ("/seats/seat-02/reset", "/seats/seat-02/keys"):
        assert requests.post(url + path, headers=one, timeout=30).status_code == 403
    mine = requests.get(f"{url}/seat", headers=one, timeout=30).json()
    theirs = requests.get(f"{url}/seat", headers=two, timeout=30).json()
    assert mine["seat"] == "seat-01" and len(mine["quiz"]) == 2 and theirs["seat"] == "seat-02" and theirs["quiz"] == []
    # the instructor sees both, as JSON and as CSV; the table never holds a key
    admin = {"Training-Key": handle.training_key}
    table = requests.get(f"{url}/progress", headers=admin, timeout=30)
    assert [r["seat"] for r in table.json()["rows"]] == ["seat-01", "seat-02"]
    assert not any(s.training_key in table.text or s.prediction_key in table.text for s in seats)
    assert table.json()["queue"]["slots"] == 1
    exported = requests.get(f"{url}/progress?format=csv", headers=admin, timeout=30)
    assert exported.headers["content-type"].startswith("text/csv") and "attachment" in exported.headers[
        "content-disposition"] and exported.text.startswith("Seat,Laptop,Lesson,Last progress")
    assert requests.get(f"{url}/progress?idleMinutes=0", headers=admin, timeout=30).status_code == 400
    # new keys for seat-01: the old one stops at once, seat-02 keeps its own
    fresh = requests.post(f"{url}/seats/seat-01/keys", headers=admin, timeout=30).json()
    assert requests.get(f"{url}/seat", headers=one, timeout=30).status_code == 401
    assert requests.get(f"{url}/seat", headers={"Training-Key": fresh["trainingKey"]}, timeout=30).json()[
        "seat"] == "seat-01"
    assert requests.get(f"{url}/seat", headers=two, timeout=30).status_code == 200


def test_join_from_cvlab_lab_and_report_quiz_answers(room, tmp_path, capsys):
    ws, handle, seats = room
    laptop = tmp_path / "laptop"
    base = ["lab", "--workspace", str(laptop), "--no-seed", "--dry-run"]
    assert main(base + ["--join", handle.endpoint, "--key", "not-a-seat-key"]) == 1
    assert "does not accept this key" in capsys.readouterr().err
    assert main(base + ["--key", seats[0].training_key]) == 1
    assert main(base + ["--join", handle.endpoint]) == 1
    assert "needs your seat key" in capsys.readouterr().err
    env = tmp_path / "seat-01.env"
    from cvlab.cli.workshop import env_file
    env.write_text(env_file(seats[0], handle.endpoint))
    assert main(base + ["--join", str(env)]) == 0
    assert "Joined seat-01" in capsys.readouterr().out
    j = learner.joined(laptop)
    assert (j.endpoint, j.seat, j.key) == (handle.endpoint, "seat-01", seats[0].training_key)
    assert seats[0].training_key not in repr(j)
    assert oct((laptop / "classroom" / "join.json").stat().st_mode & 0o777) == "0o600"
    # the reporter reads the quiz's own records: three answers, one reset, then one more
    lw = Workspace(laptop)
    for qid, answer in (("eval-03", "0.5"), ("eval-03", "0.9"), ("eval-03", "0.5")):
        quiz.record(lw, quiz.grade(qid, answer))
    rep = Reporter(laptop)
    rep.step()
    assert rep.outbox.waiting() == 0 and rep.sender.state == "up to date"
    quiz.reset_progress(lw)
    quiz.record(lw, quiz.grade("eval-03", "0.9"))
    rep.step()
    lw.close()
    rep.collector.close()
    row = next(r for r in B.progress(ws)["rows"] if r["seat"] == "seat-01")
    assert row["cells"]["quiz:evaluate"]["text"] == "0/1"  # after the reset only the last answer counts
    details = requests.get(f"{handle.endpoint}/cvlab/workshop/seat", headers={
        "Training-Key": seats[0].training_key}, timeout=30).json()
    assert [q["correct"] for q in details["quiz"]] == [False]
    # a restarted reporter queues nothing twice
    again = Reporter(laptop)
    again.step()
    assert again.outbox.last_seq == rep.outbox.last_seq == 5
    again.collector.close()
    # unreachable: joined anyway, and told so
    assert main(base + ["--join", "http://127.0.0.1:9", "--key", "k"]) == 0
    assert "does not answer now" in capsys.readouterr().out
    assert learner.status(laptop)["endpoint"] == "http://127.0.0.1:9"
    assert learner.leave(laptop) and learner.joined(laptop) is None


def test_follow_is_a_no_op_outside_a_kernel(tmp_path):
    assert learner.follow(tmp_path) is False
    assert not (tmp_path / "classroom" / "cells.jsonl").exists()


# ---- the instructor's commands ---------------------------------------------------------------------------------
def _all_actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_actions(sub)
        elif not isinstance(action, argparse._HelpAction):
            yield parser.prog, action


def test_every_option_of_workshop_serve_and_lab_has_help():
    for name in ("workshop", "serve", "lab"):
        parser = argparse.ArgumentParser(prog=f"cvlab {name}")
        load_command(name).configure(parser)
        missing = [(prog, a.dest) for prog, a in _all_actions(parser) if not (a.help or "").strip()]
        assert missing == [], missing
    assert "workshop" in COMMANDS


def test_create_handout_rotate_and_progress_commands(tmp_path, capsys):
    w = str(tmp_path / "ws")
    assert main(["workshop", "--workspace", w, "create", "--seats", "3"]) == 0
    assert "Added 3 seat(s): seat-01..seat-03" in capsys.readouterr().out
    assert main(["workshop", "--workspace", w, "create", "--seats", "2"]) == 0
    said = capsys.readouterr().out
    assert "3 seats exist already, more than the 2 asked for: none was removed" in said and "reset --seat" in said
    ws = Workspace(w)
    assert len(workshop.get_seats(ws)) == 3
    # no server yet: the handout will not guess an address
    assert main(["workshop", "--workspace", w, "handout"]) == 1
    assert "start it first" in capsys.readouterr().err
    workshop.record_endpoint(ws, "127.0.0.1", 8123)
    assert main(["workshop", "--workspace", w, "handout", "--seat", "seat-02"]) == 0
    page = capsys.readouterr().out
    seat2 = workshop.get_seat(ws, "seat-02")
    assert f"cvlab lab --join http://127.0.0.1:8123 --key {seat2.training_key}" in page
    assert "only the instructor's own machine reaches" in page  # a loopback handout says so
    assert workshop.get_seat(ws, "seat-01").training_key not in page
    workshop.record_endpoint(ws, "10.1.2.3", 8123)
    html = workshop.handout(ws, fmt="html")
    assert "http://10.1.2.3:8123" in html and "only the instructor" not in html
    assert main(["workshop", "--workspace", w, "handout", "--format", "env", "--out", str(tmp_path / "env") + "/"]) == 0
    files = sorted(p.name for p in (tmp_path / "env").iterdir())
    assert files == ["seat-01.env", "seat-02.env", "seat-03.env"]
    assert learner.read_env_file(tmp_path / "env" / "seat-02.env") == ("http://10.1.2.3:8123", seat2.training_key)
    capsys.readouterr()
    assert main(["workshop", "--workspace", w, "rotate-keys", "--seat", "seat-02"]) == 0
    new = workshop.get_seat(ws, "seat-02")
    assert new.training_key != seat2.training_key and new.prediction_resource_id == seat2.prediction_resource_id
    assert f"--join http://10.1.2.3:8123 --key {new.training_key}" in capsys.readouterr().out
    assert workshop.get_seat(ws, "seat-01").training_key == workshop.get_seats(ws)[0].training_key
    for fmt in ("table", "csv", "json"):
        assert main(["workshop", "--workspace", w, "progress", "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert "seat-03" in out and new.training_key not in out
    assert main(["workshop", "--workspace", w, "progress", "--idle-minutes", "0"]) == 1
    ws.close()


def _seat_with_project(ws, name: str, project: str) -> None:
    sw = workshop.open_seat(ws, name)
    sw.create_project(project)
    sw.close()


def test_reset_lists_what_it_deletes_and_without_yes_deletes_nothing(tmp_path, capsys):
    w = str(tmp_path / "ws")
    ws = Workspace(w)
    workshop.create_seats(ws, 2)
    _seat_with_project(ws, "seat-01", "mine")
    _seat_with_project(ws, "seat-02", "theirs")
    store = ClassStore(ws)
    store.ingest("seat-01", {"stream": "stream-of-seat-1", "events": _events(4)})
    store.close()
    capsys.readouterr()
    assert main(["workshop", "--workspace", w, "reset"]) == 1  # stdin is no terminal: nobody to ask
    captured = capsys.readouterr()
    assert "project 'mine'" in captured.out and "project 'theirs'" in captured.out and "4 events" in captured.out
    assert "Nothing deleted" in captured.err
    names = lambda n: [p.name for p in workshop.open_seat(ws, n).get_projects()]  # noqa: E731
    assert names("seat-01") == ["mine"] and names("seat-02") == ["theirs"]
    assert ClassStore(ws).count("seat-01") == 4
    # at a terminal: "n" keeps everything, "yes" deletes the one seat asked for
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    for answer, code in ((b"n\n", 1), (b"yes\n", 0)):
        main_fd, child_fd = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "cvlab.cli", "workshop", "--workspace", w, "reset", "--seat",
                                 "seat-01"], stdin=child_fd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        os.close(child_fd)
        os.write(main_fd, answer)
        out, _ = proc.communicate(timeout=120)
        os.close(main_fd)
        assert proc.returncode == code, out
        assert b"Type yes to confirm" in out
    assert names("seat-01") == [] and names("seat-02") == ["theirs"]
    assert ClassStore(ws).count("seat-01") == 0
    assert main(["workshop", "--workspace", w, "reset", "--seat", "seat-02", "--yes"]) == 0
    assert names("seat-02") == []
    ws.close()


def _serve(args, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "cvlab.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    lines, deadline = [], time.monotonic() + timeout
    for line in proc.stdout:
        lines.append(line)
        if "Press Ctrl+C" in line or time.monotonic() > deadline:
            break
    return proc, "".join(lines)


def test_serve_says_it_is_loopback_only_and_the_handout_uses_the_bound_port(tmp_path):
    w = str(tmp_path / "ws")
    for args in (["workshop", "--workspace", w, "serve", "--seats", "2", "--port", "0", "--handout",
                  str(tmp_path / "h.html")],
                 ["serve", "--workspace", w, "--workshop", "2", "--port", "0"]):
        proc, banner = _serve(args)
        try:
            assert "bound to 127.0.0.1 only: learners' laptops cannot reach" in banner, banner
            assert "--host 0.0.0.0" in banner
            port = re.search(r"http://127\.0\.0\.1:(\d+)", banner).group(1)
            assert port != "0" and port != "8080"
            ws = Workspace(w)
            assert workshop.recorded_endpoint(ws) == f"http://127.0.0.1:{port}"
            ws.close()
            if args[0] == "workshop":
                assert f"http://127.0.0.1:{port}" in (tmp_path / "h.html").read_text()
                assert requests.get(f"http://127.0.0.1:{port}/cvlab/workshop/seat", timeout=30).status_code == 401
        finally:
            proc.terminate()
            proc.wait(60)
    info = workshop.listening("0.0.0.0", 8080)
    assert info["urls"] and all(not u.startswith("http://127.") for u in info["urls"]) or info["loopback"]
    assert workshop.room_notice(workshop.listening("10.0.0.7", 8080)) == [
        "Learners reach this server at http://10.0.0.7:8080."]

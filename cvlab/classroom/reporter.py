"""The reporter: turns what a learner's workspace records into progress events and sends them to the workshop.

It reads, never hooks: the lesson cell log the kernels append (``classroom/cells.jsonl``), the quiz's own records
(``quiz/records.jsonl``, ``cvlab.quiz``) and the workspace's projects and iterations. Each fact becomes one event
in the outbox (``cvlab.classroom.outbox``), and the outbox is sent to ``POST <workshop>/cvlab/workshop/events`` with
the seat's key whenever the server answers. One reporter runs per workspace (``classroom/reporter.lock``); it
polls a few file sizes every 0.2 s, so an event usually reaches the instructor well within a second.

Events (``data``):

- ``lesson``: ``lesson``, ``cell`` (the furthest code cell run, 1-based), ``cells`` (code cells in the lesson);
- ``exercise``: ``lesson``, ``exercise`` (its cell id), ``number``, ``passed``, ``error`` (the check's message);
- ``quiz`` / ``quiz_reset`` / ``exam``: an answer record (question, points, max_points, correct, mode, response),
  a reset, or a finished exam (scaled score, per skill);
- ``iteration``: a snapshot of one iteration (project, status, training type, published name, precision, recall,
  AP at the 50 % threshold), again whenever it changes; status ``Deleted`` when it is gone.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from . import lessons
from .learner import CELLS_LOG, FOLDER, STATUS_FILE, _lock, joined, now_iso
from .outbox import Outbox, write_atomic

log = logging.getLogger("cvlab.classroom")

STATE_FILE = "reporter-state.json"
LESSONS_CACHE = "lessons.json"
HEARTBEAT_S = 20.0      # an empty batch now and then: the Class page tells "offline" from "idle"
BATCH = 200
POLL_S = 0.2
ITERATIONS_POLL_S = 0.25  # the workspace is queried only when cvlab.db (or its WAL) changed since
PID_FILE = "reporter.pid"


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
        return st.st_size, st.st_mtime_ns
    except FileNotFoundError:
        return 0, 0


class Collector:
    """Workspace records -> outbox events (each fact once: the outbox refuses a key it already holds)."""

    def __init__(self, workspace_path: Path, outbox: Outbox, source=None):
        self.workspace = Path(workspace_path)
        self.outbox = outbox
        self.source = source
        self.folder = self.workspace / FOLDER
        self._ws = None
        self._metrics: dict[tuple, dict] = {}
        self._signatures: dict[str, object] = {}
        self._iterations_checked = 0.0
        self.kernel_lesson: dict[str, str] = {}   # kernel token -> the lesson its last known cell belongs to
        self.furthest: dict[str, int] = {}
        self.iterations: dict[str, str] = {}      # iteration id -> digest of the last snapshot queued
        for ev in outbox.events:                  # what was already queued, so a restart adds nothing twice
            if ev.type == "lesson":
                self.furthest[ev.data["lesson"]] = max(self.furthest.get(ev.data["lesson"], 0), ev.data["cell"])
            elif ev.type == "iteration":
                self.iterations[ev.data["id"]] = ev.key.rsplit(":", 1)[1]
        try:
            self.cells_offset = int(json.loads((self.folder / STATE_FILE).read_text())["cells_offset"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            self.cells_offset = 0

    def catalogue(self) -> lessons.Catalogue:
        return lessons.catalogue(self.source, cache_file=self.folder / LESSONS_CACHE)

    def collect(self) -> int:
        """Queue whatever is new; returns how many events were added."""
        before = self.outbox.last_seq
        for part in (self._cells, self._quiz, self._iterations):
            try:
                part()
            except Exception as e:  # noqa: BLE001 - one unreadable source must not stop the others
                log.warning("classroom: %s failed: %s: %s", part.__name__, type(e).__name__, e)
        return self.outbox.last_seq - before

    # ---- lesson cells ---------------------------------------------------------------------------------------
    def _cells(self) -> None:
        path = self.folder / CELLS_LOG
        size, _ = _stat(path)
        if size < self.cells_offset:
            self.cells_offset = 0  # the log was replaced: read it again (keys keep events single)
        if size == self.cells_offset:
            return
        with open(path, "rb") as f:
            f.seek(self.cells_offset)
            chunk = f.read(size - self.cells_offset)
        end = chunk.rfind(b"\n") + 1  # only whole lines: a kernel may be writing the next one
        if not end:
            return
        cat = self.catalogue()
        for line in chunk[:end].split(b"\n"):
            if line.strip():
                self._cell(cat, line)
        self.cells_offset += end
        write_atomic(self.folder / STATE_FILE, json.dumps({"cells_offset": self.cells_offset}).encode())

    def _cell(self, cat: lessons.Catalogue, line: bytes) -> None:
        try:
            rec = json.loads(line)
            places = cat.place(rec.get("id"), rec["sha"])
        except (ValueError, KeyError, TypeError):
            return
        kernel = rec.get("k", "")
        if len(places) > 1:  # a line several lessons share: it belongs to the lesson this kernel is in
            places = [p for p in places if p.lesson == self.kernel_lesson.get(kernel)]
        if len(places) != 1:
            return
        place = places[0]
        self.kernel_lesson[kernel] = place.lesson
        at = rec.get("at") or now_iso()
        if place.role == "check" and place.exercise is not None:
            ex = place.exercise
            data = {"lesson": ex.lesson, "exercise": ex.id, "number": ex.number, "passed": bool(rec.get("ok"))}
            if not rec.get("ok"):
                data["error"] = str(rec.get("error", ""))[:300]
            self.outbox.add("exercise", "x:" + hashlib.sha1(line).hexdigest()[:16], at, data)
        if place.index > self.furthest.get(place.lesson, 0):
            self.furthest[place.lesson] = place.index
            lesson = cat.lesson(place.lesson)
            self.outbox.add("lesson", f"lesson:{place.lesson}:{place.index}", at,
                            {"lesson": place.lesson, "cell": place.index,
                             "cells": lesson.code_cells if lesson else None})

    # ---- quiz records (cvlab.quiz's own store) ---------------------------------------------------------------
    def _quiz(self) -> None:
        from cvlab.quiz.store import FOLDER as QUIZ, RECORDS, QuizStore
        sig = _stat(self.workspace / QUIZ / RECORDS)
        if sig == self._signatures.get("quiz"):
            return
        self._signatures["quiz"] = sig
        for i, rec in enumerate(QuizStore(str(self.workspace)).records(since_reset=False)):
            rec = {k: v for k, v in rec.items() if k != "at_dt"}
            key = f"quiz:{i}:{_digest(rec)}"  # the same answer twice in one second is two answers
            if rec["type"] == "answer":
                data = {k: rec.get(k) for k in ("question", "points", "max_points", "correct", "mode", "response",
                                                "skill", "exam")}
                self.outbox.add("quiz", key, rec["at"], data)
            elif rec["type"] == "reset":
                self.outbox.add("quiz_reset", key, rec["at"], {})
            elif rec["type"] == "exam":
                self.outbox.add("exam", key, rec["at"], {k: rec.get(k) for k in (
                    "attempt", "scaled", "passed", "fraction", "by_skill", "answered", "timed_out")})

    # ---- iterations -----------------------------------------------------------------------------------------
    def _iterations(self) -> None:
        from cvlab.workspace.store import DB_NAME
        if time.monotonic() - self._iterations_checked < ITERATIONS_POLL_S:
            return
        self._iterations_checked = time.monotonic()
        db = self.workspace / DB_NAME
        sig = (_stat(db), _stat(db.with_name(DB_NAME + "-wal")))
        if sig == self._signatures.get("db") or not db.exists():
            return
        if self._ws is None:
            from cvlab.workspace import Workspace
            self._ws = Workspace(self.workspace, create=False)
        ws = self._ws
        seen: dict[str, dict] = {}
        for p in ws.get_projects():
            for it in ws.get_iterations(p.id):
                seen[it.id] = iteration_snapshot(ws, p, it, self._metrics)
        self._signatures["db"] = sig
        for iid, snap in seen.items():
            digest = _digest(snap)
            if self.iterations.get(iid) != digest:
                self.iterations[iid] = digest
                self.outbox.add("iteration", f"it:{iid}:{digest}", now_iso(), snap)
        for iid in [i for i, d in self.iterations.items() if i not in seen and d != "deleted"]:
            self.iterations[iid] = "deleted"
            self.outbox.add("iteration", f"it:{iid}:deleted", now_iso(), {"id": iid, "status": "Deleted"})

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()


def iteration_snapshot(ws, project, it, metrics_cache: dict) -> dict:
    """What a report says about one iteration; metrics once per training (``metrics_cache`` keeps them)."""
    snap = {"id": it.id, "name": it.name, "status": it.status, "project_id": project.id, "project": project.name,
            "project_type": project.project_type, "training_type": it.training_type,
            "publish_name": it.publish_name, "trained_at": it.trained_at.isoformat() if it.trained_at else None}
    if it.status == "Completed":
        key = (str(ws.path), it.id, snap["trained_at"])
        if key not in metrics_cache:
            metrics_cache[key] = iteration_metrics(ws, project.id, it.id)
        snap["metrics"] = metrics_cache[key]
    return snap


def iteration_metrics(ws, project_id: str, iteration_id: str) -> dict:
    """Precision, recall and AP (mAP for detection) at the Performance page's default 50 % threshold."""
    from cvlab.errors import CvlabError
    from cvlab.metrics import json_number
    from cvlab.performance import get_iteration_performance
    try:
        perf = get_iteration_performance(ws, project_id, iteration_id)
    except (CvlabError, OSError, ValueError) as e:
        return {"error": getattr(e, "message", str(e))[:200]}
    return {"precision": json_number(perf.precision), "recall": json_number(perf.recall),
            "average_precision": json_number(perf.average_precision)}


class Sender:
    """Sends the outbox in order, one batch at a time, and records what the server acknowledged."""

    def __init__(self, workspace_path: Path, outbox: Outbox, timeout: float = 10.0):
        import requests
        self.workspace = Path(workspace_path)
        self.outbox = outbox
        self.timeout = timeout
        self.session = requests.Session()
        self.state = "starting"
        self.message = ""
        self.retry_at = 0.0
        self.backoff = 0.0
        self.last_contact = 0.0
        self.last_sent: str | None = None
        self.failures = 0  # batches not acknowledged (offline, refused, an error)
        self._status_written = None

    def send(self) -> None:
        j = joined(self.workspace)
        if j is None:
            self._set("not joined", "join with `cvlab lab --join URL --key KEY`")
            return
        while time.monotonic() >= self.retry_at:
            batch = self.outbox.pending(BATCH)
            if not batch and time.monotonic() - self.last_contact < HEARTBEAT_S:
                break
            if not self._post(j, batch) or len(batch) < BATCH:
                break
        self._write_status(j)

    def _post(self, j, batch) -> bool:
        import requests
        body = {"stream": self.outbox.stream, "events": [e.wire() for e in batch]}
        try:
            r = self.session.post(f"{j.endpoint}/cvlab/workshop/events", json=body, timeout=self.timeout,
                                  headers={"Training-Key": j.key})
        except requests.RequestException as e:
            return self._failed("offline", f"the workshop at {j.endpoint} does not answer ({type(e).__name__}); "
                                "progress is kept here and sent when it does", 2.0)
        if r.status_code in (401, 403):
            return self._failed("refused", "the workshop refused this seat key: your instructor may have issued "
                                "a new one; join again with `cvlab lab --join URL --key NEW_KEY`", 30.0, fixed=True)
        if r.status_code != 200:
            return self._failed("error", f"the workshop answered HTTP {r.status_code}: {r.text[:200]}", 5.0)
        acked = int(r.json().get("acked", 0))
        if acked > self.outbox.last_seq:  # the server knows more of this stream than the outbox holds
            self.outbox.restart_stream()
        else:
            self.outbox.ack(acked)
        self.backoff, self.retry_at, self.last_contact = 0.0, 0.0, time.monotonic()
        if batch:
            self.last_sent = now_iso()
        self._set("sending" if self.outbox.waiting() else "up to date", "")
        return True

    def _failed(self, state: str, message: str, ceiling: float, fixed: bool = False) -> bool:
        self.failures += 1
        self.backoff = ceiling if fixed else min(ceiling, max(0.25, self.backoff * 2))
        self.retry_at = time.monotonic() + self.backoff
        self._set(state, message)
        return False

    def _set(self, state: str, message: str) -> None:
        self.state, self.message = state, message

    def _write_status(self, j) -> None:
        status = {"state": self.state, "message": self.message, "waiting": self.outbox.waiting(),
                  "last_sent": self.last_sent, "endpoint": j.endpoint}
        if status != self._status_written:
            self._status_written = status
            write_atomic(self.workspace / FOLDER / STATUS_FILE, json.dumps(status, indent=1).encode())


def _alive(pid: int) -> bool:
    import psutil
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Reporter:
    """Collector + sender on one workspace (a thread in tests and benchmarks, a process for learners)."""

    def __init__(self, workspace_path, source=None):
        self.workspace = Path(workspace_path)
        self.outbox = Outbox(self.workspace / FOLDER)
        self.collector = Collector(self.workspace, self.outbox, source)
        self.sender = Sender(self.workspace, self.outbox)

    def step(self) -> None:
        self.collector.collect()
        self.sender.send()

    def run(self, stop: threading.Event, parent: int | None = None, poll: float = POLL_S,
            grace: float = 60.0) -> None:
        """Until ``stop`` is set, or ``parent`` has ended and the outbox is empty (or ``grace`` seconds passed)."""
        gone = None
        try:
            while not stop.is_set():
                self.step()
                if parent is not None and gone is None and not _alive(parent):
                    gone = time.monotonic()
                if gone is not None and (not self.outbox.waiting() or time.monotonic() - gone > grace):
                    break
                stop.wait(poll)
            self.step()
        finally:
            self.collector.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cvlab.classroom",
                                 description="Send a learner workspace's course progress to its workshop.")
    sub = ap.add_subparsers(dest="action", required=True)
    p = sub.add_parser("report", help="run the reporter (one per workspace; started by `cvlab lab` or a lesson)")
    p.add_argument("--workspace", required=True, help="the learner's workspace folder")
    p.add_argument("--parent", type=int, default=None,
                   help="stop once this process (JupyterLab, a kernel) has ended and the outbox is sent or kept")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from filelock import Timeout
    lock = _lock(Path(args.workspace))
    try:
        lock.acquire()
    except Timeout:
        return 0  # another reporter already serves this workspace
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pid_file = Path(args.workspace) / FOLDER / PID_FILE
    pid_file.write_text(str(os.getpid()))
    try:
        log.info("classroom reporter %s for %s", os.getpid(), args.workspace)
        Reporter(args.workspace).run(stop, args.parent)
    except KeyboardInterrupt:
        pass
    finally:
        pid_file.unlink(missing_ok=True)
        lock.release()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

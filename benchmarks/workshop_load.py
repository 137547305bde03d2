"""A classroom at once on one `cvlab workshop serve`: N seats (default 30) doing Microsoft's SDK lab steps through
the official SDK (create a project, upload 20 images, train Quick, publish, make 50 predictions), while N joined
learners (default 30, on seats of their own) work through the lessons on their "laptops" (a workspace each, with
the real reporter sending lesson cells, exercise checks and quiz answers) and the instructor's Class page asks for
the table every second.

Prints JSON: failed requests (must be 0: SDK calls, progress batches, Class page polls), prediction latency
percentiles (goal p95 <= 250 ms), the longest training queue wait (server side), the progress-event delay from the
kernel's cell log to the server's store (goal p95 <= 1 s), whether every event arrived exactly once, and the load
average (the machine may be shared).

    .venv/bin/python benchmarks/workshop_load.py [--learners 30 --joined 30 --images 20 --predictions 50]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

from cvlab import workshop
from cvlab.datasets.swatches import COLOURS, swatch_jpeg
from cvlab.workspace import Workspace


def jpeg(rgb, seed: int, size: int = 96) -> bytes:
    return swatch_jpeg(rgb, seed, size)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.failures: list[str] = []
        self.prediction_s: list[float] = []        # warm: the iteration's model already loaded
        self.first_prediction_s: list[float] = []  # each learner's first call loads the model (cold start)

    def call(self, what, fn, *args, **kwargs):
        with self.lock:
            self.requests += 1
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - every failure is counted and reported
            with self.lock:
                self.failures.append(f"{what}: {type(e).__name__}: {str(e)[:200]}")
            raise


def learner(endpoint: str, seat, k: int, n_images: int, n_predictions: int, stats: Stats) -> dict:
    from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
    from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
    from azure.cognitiveservices.vision.customvision.training.models import (ImageFileCreateBatch,
                                                                             ImageFileCreateEntry)
    from msrest.authentication import ApiKeyCredentials

    trainer = CustomVisionTrainingClient(endpoint, ApiKeyCredentials(in_headers={"Training-key": seat.training_key}))
    predictor = CustomVisionPredictionClient(endpoint,
                                             ApiKeyCredentials(in_headers={"Prediction-key": seat.prediction_key}))
    out = {"seat": seat.name}
    try:
        domains = stats.call("get_domains", trainer.get_domains)
        d = next(d for d in domains if d.type == "Classification" and d.name == "General (compact)")
        project = stats.call("create_project", trainer.create_project, "Colours", domain_id=d.id)
        tags = {name: stats.call("create_tag", trainer.create_tag, project.id, name) for name in COLOURS}
        entries = [ImageFileCreateEntry(name=f"{name}_{i}.jpg", contents=jpeg(rgb, 1000 * k + 10 * i + j),
                                        tag_ids=[tags[name].id])
                   for i in range(n_images // 2) for j, (name, rgb) in enumerate(COLOURS.items())]
        up = stats.call("upload", trainer.create_images_from_files, project.id, ImageFileCreateBatch(images=entries))
        assert up.is_batch_successful
        t0 = time.monotonic()
        it = stats.call("train", trainer.train_project, project.id)
        out["status_at_submit"] = it.status
        while it.status in ("Training", "Queued"):
            time.sleep(1.0)
            it = stats.call("get_iteration", trainer.get_iteration, project.id, it.id)
        out["train_wall_s"] = round(time.monotonic() - t0, 2)
        if it.status != "Completed":
            raise RuntimeError(f"training ended {it.status}: {it.training_error_details}")
        stats.call("publish", trainer.publish_iteration, project.id, it.id, "prod", seat.prediction_resource_id)
        right = 0
        for i in range(n_predictions):
            name = list(COLOURS)[i % 2]
            data = jpeg(COLOURS[name], 10_000_000 + 1000 * k + i)
            t = time.monotonic()
            res = stats.call("predict", predictor.classify_image, project.id, "prod", data)
            with stats.lock:
                (stats.prediction_s if i else stats.first_prediction_s).append(time.monotonic() - t)
            right += res.predictions[0].tag_name == name
        out["accuracy"] = right / max(1, n_predictions)
    except Exception as e:  # noqa: BLE001
        out["error"] = f"{type(e).__name__}: {e}"[:300]
    return out


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


class _Info:  # what IPython hands a post_run_cell callback: the cell's source and id
    def __init__(self, source: str, cell_id: str | None):
        self.raw_cell, self.cell_id, self.silent = source, cell_id, False


class _Result:
    def __init__(self, source: str, cell_id: str | None, error: Exception | None):
        self.info, self.error_before_exec, self.error_in_exec = _Info(source, cell_id), None, error


def joined_learner(root: Path, endpoint: str, seat, k: int, stop: threading.Event, stats: Stats) -> dict:
    """A learner going through the lessons at a human pace (a cell every 0.5-2 s, each exercise's check failing
    once before it passes, a quiz answer after each lesson), with the real cell log, quiz store and reporter."""
    import random

    from cvlab import quiz
    from cvlab.classroom import learner as L
    from cvlab.classroom import lessons
    from cvlab.classroom.reporter import Reporter
    laptop = root / f"laptop-{k:02d}"
    with stats.lock:
        stats.requests += 1
    L.join(laptop, endpoint, seat.training_key)
    log = L.CellLog(laptop)
    log._checked = float("inf")  # the benchmark runs the reporter itself, in a thread
    reporter = Reporter(laptop)
    done = threading.Event()
    thread = threading.Thread(target=reporter.run, args=(done,), daemon=True)
    thread.start()
    rng = random.Random(k)
    cat = lessons.catalogue()
    questions = [q for q in quiz.questions() if not q.facts][: 10 * len(cat.lessons)]
    cells = 0
    for number, lesson in enumerate(cat.lessons):
        for cell_id, digest, place in (c for c in cat.cells if c[2].lesson == lesson.number):
            if stop.is_set():
                break
            source = f"# cell {cell_id}"  # matched by id, as JupyterLab sends it
            if place.role == "check":
                log.after_cell(_Result(source, cell_id, AssertionError("fill in the exercise cell above")))
            log.after_cell(_Result(source, cell_id, None))
            cells += 1
            stop.wait(rng.uniform(0.5, 2.0))
        qs = questions[number * 2: number * 2 + 2]
        for q in qs:
            quiz.record(str(laptop), quiz.Grade(q.id, rng.random() < 0.7, "", ""))
    done.set()
    thread.join(120)
    return {"seat": seat.name, "cells": cells, "queued": reporter.outbox.last_seq,
            "waiting": reporter.outbox.waiting(), "failed_batches": reporter.sender.failures,
            "state": reporter.sender.state}


def class_page(endpoint: str, key: str, stop: threading.Event, stats: Stats, times: list) -> None:
    """The instructor's Class page: the table every second (what the portal asks for)."""
    s = requests.Session()
    while not stop.is_set():
        t = time.monotonic()
        r = stats.call("class page", s.get, f"{endpoint}/cvlab/workshop/progress",
                       headers={"Training-Key": key}, timeout=60)
        if r.status_code != 200:
            with stats.lock:
                stats.failures.append(f"class page: HTTP {r.status_code}")
        times.append(time.monotonic() - t)
        stop.wait(max(0.0, 1.0 - (time.monotonic() - t)))


def _pct(values, q):
    return round(float(np.percentile(values, q)), 3) if len(values) else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--learners", type=int, default=30, help="seats doing the SDK lab steps")
    ap.add_argument("--joined", type=int, default=30, help="joined learners sending lesson progress (own seats)")
    ap.add_argument("--images", type=int, default=20, help="images each SDK learner uploads")
    ap.add_argument("--predictions", type=int, default=50, help="predictions each SDK learner makes")
    ap.add_argument("--rate-limits", action="store_true", help="enforce S0 per-seat rate limits (default off)")
    ap.add_argument("--workspace", default=None, help="default: a temporary folder")
    args = ap.parse_args(argv)

    load_before = os.getloadavg()
    root = Path(args.workspace or tempfile.mkdtemp(prefix="cvlab-workshop-"))
    ws = Workspace(root / "instructor")
    seats = workshop.create_seats(ws, args.learners + args.joined)
    ws.close()
    sdk_seats, joined_seats = seats[: args.learners], seats[args.learners: args.learners + args.joined]
    cmd = [sys.executable, "-m", "cvlab.cli", "workshop", "--workspace", str(root / "instructor"), "serve",
           "--port", "0"]
    if not args.rate_limits:
        cmd.append("--no-rate-limit")
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    endpoint = instructor_key = None
    for line in server.stdout:
        m = re.search(r"endpoint (http://\S+) for", line)
        endpoint = m.group(1) if m else endpoint
        m = re.search(r"Instructor training key: (\S+)", line)
        instructor_key = m.group(1) if m else instructor_key
        if "Press Ctrl+C" in line:
            break
    threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()  # keep the pipe drained
    page_times: list[float] = []
    try:
        stats = Stats()
        stop = threading.Event()
        page = threading.Thread(target=class_page, args=(endpoint, instructor_key, stop, stats, page_times),
                                daemon=True)
        page.start()
        t0 = time.monotonic()
        with ThreadPoolExecutor(args.learners + args.joined) as pool:
            progress = [pool.submit(joined_learner, root, endpoint, seat, k, stop, stats)
                        for k, seat in enumerate(joined_seats)]
            results = list(pool.map(lambda ks: learner(endpoint, ks[1], ks[0], args.images, args.predictions, stats),
                                    enumerate(sdk_seats)))
            total = time.monotonic() - t0
            stop.set()  # the lessons end when the SDK labs do; each reporter then sends what it holds
            joined = [f.result() for f in progress]
        page.join(60)
        prog = requests.get(f"{endpoint}/cvlab/workshop/progress", headers={"Training-Key": instructor_key},
                            timeout=300).json()
        rss_mb = _rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    from cvlab.classroom.store import ClassStore, parse_time
    ws = Workspace(root / "instructor")
    store = ClassStore(ws)
    rows = store._db().execute("SELECT type, at, received FROM events").fetchall()
    stored = len(rows)
    store.close()
    ws.close()
    if not args.workspace:
        shutil.rmtree(root, ignore_errors=True)
    delays = np.array([(parse_time(r) - parse_time(a)).total_seconds() for kind, a, r in rows
                       if kind in ("lesson", "exercise")])  # the cell log's time -> stored on the server
    lat = np.array(stats.prediction_s + stats.first_prediction_s or [float("nan")])
    warm = np.array(stats.prediction_s or [float("nan")])
    trains = [r["train_wall_s"] for r in results if "train_wall_s" in r]
    queued = sum(j["queued"] for j in joined)
    report = {
        "learners_sdk": args.learners, "learners_joined": args.joined, "images_each": args.images,
        "predictions_each": args.predictions, "rate_limits": args.rate_limits, "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 1) for x in load_before],
        "load_average_after": [round(x, 1) for x in os.getloadavg()],
        "requests": stats.requests, "failed_requests": len(stats.failures) + sum(j["failed_batches"] for j in joined),
        "failures": stats.failures[:10],
        "learners_with_errors": [r for r in results if "error" in r],
        "total_s": round(total, 1),
        "prediction_latency_s": {"p50": _pct(lat, 50), "p95": _pct(lat, 95), "max": round(float(lat.max()), 3),
                                 "n": len(lat), "p95_warm": _pct(warm, 95),
                                 "first_call_max": round(max(stats.first_prediction_s, default=float("nan")), 3)},
        "longest_queue_wait_s": prog["queue"]["longest_wait_s"],
        "trainings_admitted": prog["queue"]["admitted"],
        "queued_at_submit": sum(r.get("status_at_submit") == "Queued" for r in results),
        "train_submit_to_completed_s": {"min": min(trains, default=None), "max": max(trains, default=None)},
        "progress_events": {"queued": queued, "stored": stored, "still_waiting": sum(j["waiting"] for j in joined),
                            "exactly_once": stored == queued and not any(j["waiting"] for j in joined),
                            "cells_run": sum(j["cells"] for j in joined)},
        "progress_event_delay_s": {"p50": _pct(delays, 50), "p95": _pct(delays, 95),
                                   "max": round(float(delays.max()), 3) if len(delays) else None, "n": len(delays)},
        "class_page_s": {"p50": _pct(page_times, 50), "p95": _pct(page_times, 95), "n": len(page_times)},
        "server_rss_mb": rss_mb,
        "mean_accuracy": round(float(np.mean([r.get("accuracy", 0) for r in results])), 3),
    }
    print(json.dumps(report, indent=1))
    ok = not report["failed_requests"] and not report["learners_with_errors"] and \
        report["progress_events"]["exactly_once"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

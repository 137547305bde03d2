"""A classroom at once: N learners (default 30) on one `cvlab workshop serve`, each with their own seat, upload
20 images, train Quick, publish and make 50 predictions, all at the same time, through the official SDK.

Prints JSON: failed requests (must be 0), total time, prediction latency percentiles, the longest training queue
wait (server side, from GET /cvlab/workshop/progress) and each learner's submit-to-Completed time.

    .venv/bin/python benchmarks/workshop_load.py [--learners 30 --images 20 --predictions 50]
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
from cvlab.workspace import Workspace
from cvlab.datasets.swatches import swatch_jpeg

from cvlab.datasets.swatches import COLOURS  # noqa: E402


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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--learners", type=int, default=30)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--predictions", type=int, default=50)
    ap.add_argument("--rate-limits", action="store_true", help="enforce S0 per-seat rate limits (default off)")
    ap.add_argument("--workspace", default=None, help="default: a temporary folder")
    args = ap.parse_args(argv)

    root = Path(args.workspace or tempfile.mkdtemp(prefix="cvlab-workshop-"))
    ws = Workspace(root)
    seats = workshop.create_seats(ws, args.learners)[: args.learners]
    ws.close()
    cmd = [sys.executable, "-m", "cvlab.cli", "workshop", "--workspace", str(root), "serve", "--port", "0"]
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
    try:
        stats = Stats()
        t0 = time.monotonic()
        with ThreadPoolExecutor(args.learners) as pool:
            results = list(pool.map(lambda ks: learner(endpoint, ks[1], ks[0], args.images, args.predictions, stats),
                                    enumerate(seats)))
        total = time.monotonic() - t0
        prog = requests.get(f"{endpoint}/cvlab/workshop/progress", headers={"Training-Key": instructor_key},
                            timeout=300).json()
        rss_mb = _rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)
        if not args.workspace:
            shutil.rmtree(root, ignore_errors=True)
    lat = np.array(stats.prediction_s + stats.first_prediction_s or [float("nan")])
    warm = np.array(stats.prediction_s or [float("nan")])
    trains = [r["train_wall_s"] for r in results if "train_wall_s" in r]
    report = {
        "learners": args.learners, "images_each": args.images, "predictions_each": args.predictions,
        "rate_limits": args.rate_limits, "cpu_count": os.cpu_count(),
        "requests": stats.requests, "failed_requests": len(stats.failures), "failures": stats.failures[:10],
        "learners_with_errors": [r for r in results if "error" in r],
        "total_s": round(total, 1),
        "prediction_latency_s": {"p50": round(float(np.percentile(lat, 50)), 3),
                                 "p95": round(float(np.percentile(lat, 95)), 3),
                                 "max": round(float(lat.max()), 3), "n": len(lat),
                                 "p95_warm": round(float(np.percentile(warm, 95)), 3),
                                 "first_call_max": round(max(stats.first_prediction_s, default=float("nan")), 3)},
        "longest_queue_wait_s": prog["queue"]["longest_wait_s"],
        "trainings_admitted": prog["queue"]["admitted"],
        "queued_at_submit": sum(r.get("status_at_submit") == "Queued" for r in results),
        "train_submit_to_completed_s": {"min": min(trains, default=None), "max": max(trains, default=None)},
        "server_rss_mb": rss_mb,
        "mean_accuracy": round(float(np.mean([r.get("accuracy", 0) for r in results])), 3),
    }
    print(json.dumps(report, indent=1))
    return 0 if not stats.failures and not report["learners_with_errors"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Soak test: mixed traffic from concurrent clients against `cvlab serve` (a subprocess, rate limits on).

    python benchmarks/soak.py [--seconds 600] [--clients 16] [--seed 0] [--workspace DIR]

Client 0 trains (Quick, forceTrain), exports ONNX, downloads the zip and deletes the previous iteration, in a
loop; the others upload, list, count, predict (stored and not), quick-test, query predictions and create/delete
tags. Prints JSON: answered requests and failures per route (a 429 from the tier's rate limits is expected,
counted apart and not timed; clients then wait as the SDK would), p50/p95 latency per route, the server's RSS and open file descriptors
after warm-up and at the end (growth must stay within 10 %), and the workspace integrity check after a clean stop.
Exit status 0 when there were no failures, no growth beyond 10 % and the workspace checks out.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
import traceback
from collections import defaultdict
from pathlib import Path

import numpy as np
import psutil
import requests
from cvlab.datasets.swatches import swatch_jpeg
from cvlab.service.process import ServeProcess

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TRAIN = "/customvision/v3.4-preview/training"
PREDICT = "/customvision/v3.1/prediction"
COMPACT_GENERAL = "0732100f-1a38-4e49-a514-c9b44c697ab5"
JOB_TIMEOUT = 300      # seconds a training or an export may take before the soak calls it hung
REQUEST_TIMEOUT = 120  # seconds one request may take
from cvlab.datasets.swatches import COLOURS  # noqa: E402
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def jpeg(rgb, seed: int, size: int = 64) -> bytes:
    return swatch_jpeg(rgb, seed, size)


class Server(ServeProcess):
    """`cvlab serve --port 0` on a workspace, rate limits on; its RSS and open files for the growth check."""

    def __init__(self, workspace: Path):
        super().__init__(workspace, "--log-level", "warning")
        self.ps = psutil.Process(self.proc.pid)

    def resources(self) -> dict:
        return {"rss_mb": round(self.ps.memory_info().rss / 2**20, 1), "open_fds": self.ps.num_fds(),
                "threads": self.ps.num_threads()}

    def stop(self) -> int:
        super().stop(timeout=60)
        return self.proc.returncode


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = defaultdict(list)
        self.status = defaultdict(lambda: defaultdict(int))
        self.failures: list[str] = []
        self.warmup_failures: list[str] = []

    def record(self, route: str, seconds: float, status: int | str, detail: str = "") -> None:
        """Latency is kept for answered requests only: a 429 is counted, not timed (it is cheap by design)."""
        with self.lock:
            if status != 429:
                self.latency[route].append(seconds)
            self.status[route][status] += 1
            if status != 429 and (not isinstance(status, int) or status >= 400):
                if len(self.failures) < 50:
                    self.failures.append(f"{route}: {status} {detail[:300]}")

    def reset(self) -> int:
        """Start the measured window: forget timings and counts, keep failures; returns requests so far."""
        with self.lock:
            n = sum(len(v) for v in self.latency.values())
            self.latency.clear()
            self.status.clear()
            self.warmup_failures = list(self.failures)
            return n

    def summary(self) -> dict:
        out = {}
        for route in sorted(self.status):
            arr = np.asarray(self.latency.get(route) or [0.0]) * 1000
            st = self.status[route]
            out[route] = {"requests": len(self.latency.get(route, [])), "rate_limited_429": st.get(429, 0),
                          "failed": sum(n for s, n in st.items() if s != 429 and (not isinstance(s, int) or s >= 400)),
                          "p50_ms": round(float(np.percentile(arr, 50)), 1),
                          "p95_ms": round(float(np.percentile(arr, 95)), 1)}
        return out


class Client:
    def __init__(self, srv: Server, stats: Stats, stop: threading.Event):
        self.srv, self.stats, self.stop = srv, stats, stop
        self.s = requests.Session()

    def call(self, route: str, method: str, url: str, ok=(200, 201, 204), **kw) -> requests.Response | None:
        """One request, retried after a 429 like the SDK does; every attempt is recorded."""
        api = "prediction" if url.startswith(PREDICT) else "training"
        headers = {"Prediction-Key" if api == "prediction" else "Training-Key":
                   self.srv.prediction_key if api == "prediction" else self.srv.training_key, **kw.pop("headers", {})}
        while True:
            t0 = time.perf_counter()
            try:
                r = self.s.request(method, self.srv.endpoint + url, headers=headers, timeout=REQUEST_TIMEOUT, **kw)
            except requests.RequestException as exc:
                self.stats.record(route, time.perf_counter() - t0, type(exc).__name__, str(exc))
                return None
            dt = time.perf_counter() - t0
            if r.status_code == 429:
                self.stats.record(route, dt, 429)
                if self.stop.is_set():
                    return None
                time.sleep(min(float(r.headers.get("Retry-After", "1")), 1.0) * random.random() + 0.05)
                continue
            self.stats.record(route, dt, r.status_code if r.status_code not in ok else 200,
                              "" if r.status_code in ok else r.text)
            return r if r.status_code in ok else None


def _trained(c: Client) -> tuple[str, dict, str] | None:
    """A project of the workspace with tags red and blue and a Completed iteration, when there is one."""
    for p in c.call("setup", "GET", TRAIN + "/projects").json():
        tags = {t["name"]: t["id"] for t in c.call("setup", "GET", TRAIN + f"/projects/{p['id']}/tags").json()}
        done = [i for i in c.call("setup", "GET", TRAIN + f"/projects/{p['id']}/iterations").json()
                if i["status"] == "Completed" and i["exportable"]]
        if set(COLOURS) <= set(tags) and done:
            done.sort(key=lambda i: bool(i.get("publishName")))  # a published one if there is one
            return p["id"], tags, done[-1]["id"]
    return None


def setup(srv: Server, stats: Stats, seed: int) -> dict:
    """A trained, published and exported model project (reused when the workspace has one), and a project that
    receives uploads."""
    c = Client(srv, stats, threading.Event())
    found = _trained(c)
    if found:
        model, tags, it = found
    else:
        model = c.call("setup", "POST", TRAIN + "/projects", params={"name": "soak-model",
                                                                     "domainId": COMPACT_GENERAL}).json()["id"]
        tags = {}
        for name, rgb in COLOURS.items():
            tags[name] = c.call("setup", "POST", TRAIN + f"/projects/{model}/tags", params={"name": name}
                                ).json()["id"]
            for i in range(6):
                c.call("setup", "POST", TRAIN + f"/projects/{model}/images", params={"tagIds": tags[name]},
                       data=jpeg(rgb, seed * 1000 + i + (500 if name == "blue" else 0)),
                       headers={"Content-Type": "application/octet-stream"})
        it = train_and_wait(c, model)
    published = c.call("setup", "GET", TRAIN + f"/projects/{model}/iterations/{it}").json().get("publishName")
    if not published:
        published = "live"
        c.call("setup", "POST", TRAIN + f"/projects/{model}/iterations/{it}/publish",
               params={"publishName": published, "predictionId": srv.resource_id})
    export_and_download(c, model, it, "setup")
    known = {p["name"]: p["id"] for p in c.call("setup", "GET", TRAIN + "/projects").json()}
    uploads = known.get("soak-uploads") or c.call("setup", "POST", TRAIN + "/projects",
                                                  params={"name": "soak-uploads"}).json()["id"]
    up_tags = {t["name"]: t["id"] for t in c.call("setup", "GET", TRAIN + f"/projects/{uploads}/tags").json()}
    up_tag = up_tags.get("u") or c.call("setup", "POST", TRAIN + f"/projects/{uploads}/tags",
                                        params={"name": "u"}).json()["id"]
    return {"model": model, "tags": tags, "published": it, "publish_name": published, "uploads": uploads,
            "upload_tag": up_tag}


def train_and_wait(c: Client, project: str, route: str = "setup") -> str:
    r = c.call(route, "POST", TRAIN + f"/projects/{project}/train", params={"forceTrain": "true"})
    if r is None:
        raise RuntimeError("training did not start: " + "; ".join(c.stats.failures[-3:]))
    it = r.json()["id"]
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        r = c.call(route + " poll", "GET", TRAIN + f"/projects/{project}/iterations/{it}")
        if r is not None and r.json()["status"] != "Training":
            if r.json()["status"] != "Completed":
                c.stats.record(route, 0.0, "TrainingFailed", json.dumps(r.json()))
            return it
        if time.monotonic() > deadline:
            raise RuntimeError(f"iteration {it} still not Completed after {JOB_TIMEOUT} s: "
                               + (json.dumps(r.json()) if r is not None else "; ".join(c.stats.failures[-3:])))
        time.sleep(0.5)


def export_and_download(c: Client, project: str, it: str, route: str) -> None:
    c.call(route, "POST", TRAIN + f"/projects/{project}/iterations/{it}/export", params={"platform": "ONNX"})
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        r = c.call(route + " poll", "GET", TRAIN + f"/projects/{project}/iterations/{it}/export")
        if r is None:
            return
        done = [e for e in r.json() if e["platform"] == "ONNX" and e["status"] != "Exporting"]
        if done:
            if done[0]["status"] != "Done":
                c.stats.record(route, 0.0, "ExportFailed", json.dumps(done[0]))
                return
            t0 = time.perf_counter()
            z = c.s.get(done[0]["downloadUri"], timeout=120)
            c.stats.record("GET export zip", time.perf_counter() - t0,
                           200 if z.status_code == 200 and z.content[:2] == b"PK" else z.status_code)
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"ONNX export of iteration {it} still Exporting after {JOB_TIMEOUT} s")
        time.sleep(0.5)


def trainer(c: Client, ids: dict, cycled: threading.Event) -> None:
    """Client 0: retrain, export, download, drop the previous (unpublished) iteration; until stopped. A cycle that
    fails or hangs is recorded as a failure and ends the trainer (and releases the warm-up wait)."""
    previous = None
    try:
        while not c.stop.is_set():
            it = train_and_wait(c, ids["model"], "POST train")
            export_and_download(c, ids["model"], it, "POST export")
            if previous:
                c.call("DELETE iteration", "DELETE", TRAIN + f"/projects/{ids['model']}/iterations/{previous}")
            previous = it
            cycled.set()
    except Exception as exc:  # noqa: BLE001 - reported in the JSON, not lost in a thread
        c.stats.record("trainer", 0.0, type(exc).__name__, traceback.format_exc()[-1500:])
        cycled.set()


def worker(c: Client, ids: dict, n: int, seed: int) -> None:
    rnd = random.Random(seed * 100 + n)
    m, u = ids["model"], ids["uploads"]
    k = 0
    ops = ["upload"] * 4 + ["upload batch"] * 2 + ["list"] * 3 + ["count"] * 2 + ["tags"] + ["classify"] * 4 + \
        ["classify store"] * 2 + ["quicktest"] + ["query"] + ["performance"] + ["tag churn"]
    while not c.stop.is_set():
        op = rnd.choice(ops)
        k += 1
        uniq = seed * 10_000_000 + n * 100_000 + k * 10
        if op == "upload":
            c.call("POST images", "POST", TRAIN + f"/projects/{u}/images", params={"tagIds": ids["upload_tag"]},
                   data=jpeg(COLOURS["red"], uniq), headers={"Content-Type": "application/octet-stream"})
        elif op == "upload batch":
            body = {"images": [{"name": f"{uniq + i}.jpg", "contents": base64.b64encode(jpeg(COLOURS["blue"],
                                                                                             uniq + i)).decode()}
                               for i in range(4)], "tagIds": [ids["upload_tag"]]}
            c.call("POST images/files", "POST", TRAIN + f"/projects/{u}/images/files", json=body)
        elif op == "list":
            c.call("GET images", "GET", TRAIN + f"/projects/{u}/images", params={"take": 20,
                                                                                 "skip": rnd.randrange(0, 100)})
        elif op == "count":
            c.call("GET images/count", "GET", TRAIN + f"/projects/{u}/images/count")
        elif op == "tags":
            c.call("GET tags", "GET", TRAIN + f"/projects/{m}/tags")
        elif op in ("classify", "classify store"):
            colour = rnd.choice(list(COLOURS))
            suffix = "" if op == "classify store" else "/nostore"
            c.call(f"POST classify{suffix}", "POST", PREDICT + f"/{m}/classify/iterations/{ids['publish_name']}/image{suffix}",
                   data=jpeg(COLOURS[colour], uniq + 7), headers={"Content-Type": "application/octet-stream"})
        elif op == "quicktest":
            c.call("POST quicktest", "POST", TRAIN + f"/projects/{m}/quicktest/image",
                   params={"iterationId": ids["published"], "store": "false"},
                   data=jpeg(COLOURS["red"], uniq + 3), headers={"Content-Type": "application/octet-stream"})
        elif op == "query":
            c.call("POST predictions/query", "POST", TRAIN + f"/projects/{m}/predictions/query",
                   json={"maxCount": 10})
        elif op == "performance":
            c.call("GET performance", "GET", TRAIN + f"/projects/{m}/iterations/{ids['published']}/performance")
        elif op == "tag churn":
            r = c.call("POST tag", "POST", TRAIN + f"/projects/{u}/tags", params={"name": f"churn-{n}-{k}-{os.getpid()}"})
            if r is not None:
                c.call("DELETE tag", "DELETE", TRAIN + f"/projects/{u}/tags/{r.json()['id']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workspace", default=None, help="workspace folder (default: a fresh temporary one); a project "
                    "in it with tags red and blue and a Completed compact iteration is reused instead of training")
    ap.add_argument("--warmup", type=float, default=None, help="seconds of traffic before the measured window and "
                    "its resource baseline, at least one train+export cycle (default: 10 %% of --seconds, min 5)")
    ap.add_argument("--job-timeout", type=float, default=JOB_TIMEOUT, help="seconds a training or export may take "
                    "before it counts as hung (default %(default)s); a hang prints the server's thread stacks")
    args = ap.parse_args(argv)
    globals()["JOB_TIMEOUT"] = args.job_timeout
    random.seed(args.seed)
    tmp = None
    if args.workspace is None:
        tmp = tempfile.TemporaryDirectory(prefix="cvlab-soak-")
        args.workspace = Path(tmp.name) / "ws"
    stats = Stats()
    server_stacks = ""
    t_setup = time.perf_counter()
    srv = Server(Path(args.workspace))
    try:
        ids = setup(srv, stats, args.seed)
        setup_s = time.perf_counter() - t_setup
        stop = threading.Event()
        clients = [Client(srv, stats, stop) for _ in range(args.clients)]
        cycled = threading.Event()
        threads = [threading.Thread(target=trainer, args=(clients[0], ids, cycled), name="soak-trainer", daemon=True)]
        threads += [threading.Thread(target=worker, args=(c, ids, i, args.seed), name=f"soak-{i}", daemon=True)
                    for i, c in enumerate(clients[1:], 1)]
        for t in threads:
            t.start()
        # warm-up: every code path (training, export, both predictor backends) has run once before the baseline
        warmup = args.warmup if args.warmup is not None else max(5.0, 0.1 * args.seconds)
        w0 = time.monotonic()
        time.sleep(warmup)
        if not cycled.wait(2 * JOB_TIMEOUT):
            stats.record("trainer", 0.0, "NoCycle", f"no train+export cycle finished in {2 * JOB_TIMEOUT} s")
        warmup_s = time.monotonic() - w0
        warmup_requests = stats.reset()
        t0 = time.monotonic()
        start_res = srv.resources()
        samples = [start_res]
        while time.monotonic() - t0 < args.seconds:
            time.sleep(min(5.0, max(0.0, args.seconds - (time.monotonic() - t0))))
            samples.append(srv.resources())
        end_res = srv.resources()
        elapsed = time.monotonic() - t0
        stop.set()  # clients finish what they started (the trainer its cycle), so the server stops idle
        join_deadline = time.monotonic() + 2 * JOB_TIMEOUT
        for t in threads:
            t.join(max(0.1, join_deadline - time.monotonic()))
        hung = [t.name for t in threads if t.is_alive()]
        if hung:
            stats.record("hung", 0.0, "Hung", f"clients still waiting {2 * JOB_TIMEOUT} s after the stop: {hung}")
            server_stacks = srv.dump_stacks()[-20000:]
    finally:
        rc = srv.stop()
    from cvlab.workspace import Workspace
    ws = Workspace(args.workspace)
    report = ws.check()
    ws.close()
    routes = stats.summary()
    routes.pop("setup", None)
    routes.pop("setup poll", None)
    total = sum(r["requests"] for r in routes.values())
    failed = sum(r["failed"] for r in routes.values()) + len(stats.warmup_failures)
    growth = {k: round((end_res[k] - start_res[k]) / max(start_res[k], 1e-9), 3) for k in ("rss_mb", "open_fds")}
    result = {
        "seconds": round(elapsed, 1), "clients": args.clients, "seed": args.seed, "setup_seconds": round(setup_s, 1),
        "requests": total, "requests_per_second": round(total / elapsed, 1), "failed": failed,
        "rate_limited_429": sum(r["rate_limited_429"] for r in routes.values()),
        "warmup_seconds": round(warmup_s, 1), "warmup_requests": warmup_requests,
        "failures": stats.failures[:20], "routes": routes,
        **({"server_stacks": server_stacks} if server_stacks else {}),
        "server_start": start_res, "server_end": end_res, "growth": growth,
        "server_rss_mb_max": max(s["rss_mb"] for s in samples), "server_exit_code": rc,
        "server_rss_mb_every_5s": [s["rss_mb"] for s in samples],
        "integrity": {k: report[k] for k in ("ok", "sqlite_integrity", "counts", "missing_blobs", "corrupt_blobs",
                                             "orphan_blobs", "temp_files", "export_temp_dirs")},
    }
    result["passed"] = bool(failed == 0 and growth["rss_mb"] <= 0.10 and growth["open_fds"] <= 0.10
                            and report["ok"])
    print(json.dumps(result, indent=2))
    if tmp is not None:
        tmp.cleanup()
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

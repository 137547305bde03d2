"""Soak test: mixed traffic from concurrent clients against `cvlab serve` (a subprocess, rate limits on), then the
same traffic with hostile clients mixed in.

    python benchmarks/soak.py [--seconds 600] [--clients 16] [--hostile 3] [--quiet-seconds S] [--seed 0]
                              [--workspace DIR]

Client 0 trains (Quick, forceTrain), exports ONNX, downloads the zip and deletes the previous iteration, in a
loop; the other normal clients upload, list, count, predict (stored and not), quick-test, query predictions and
create/delete tags. After a warm-up, a quiet window (``--quiet-seconds``, normal clients only) measures the normal
requests' latency; then ``--hostile`` clients join for ``--seconds``, sending issue 22's attacks: a 2 MB body of
a million bad values, a multipart body of 80,659 parts, URLs of a source that drips or hangs, a URL of the
server's own loopback port, 10,240 px 1-bit PNGs (uploads and thumbnails), text that is not valid Unicode.

Prints JSON: answered requests and failures per route (a 429 from the tier's rate limits or the URL-fetch caps is
expected, counted apart and not timed; clients then wait as the SDK would), p50/p95 latency per route in both
windows, the p95 of all normal requests in the hostile window over the quiet one (goal <= 1.5x), every 5xx
(must be 0), the server's RSS and open file descriptors after warm-up, after the quiet window and at the end
(goal: RSS growth < 100 MB over both windows), and the workspace integrity check after a clean stop. Exit status 0
when there were no failures and no 5xx, the quiet window grew RSS by no more than 10 % and descriptors by no
more than the SQLite pool can hold open (``FD_ALLOWANCE``; a leak under normal traffic passes both), and the
workspace checks out; the goals are reported under "goals" (under attack the
worker pool grows by a few threads, and RSS with them: benchmarks/soak.md).
"""
from __future__ import annotations

import argparse
import base64
import http.server
import io
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
from cvlab.workspace.store import POOL

REPO = Path(__file__).resolve().parents[1]
FD_ALLOWANCE = 3 * POOL.limit   # descriptors the server may keep open after the soak: its pool's reach
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


def _failed(status: int | str) -> bool:
    """A 429 is expected (rate limits, URL-fetch caps) and "ok" is a hostile request answered as it should be."""
    return status not in (429, "ok") and (not isinstance(status, int) or status >= 400)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = defaultdict(list)
        self.status = defaultdict(lambda: defaultdict(int))
        self.failures: list[str] = []  # the first 50, whichever window
        self.failed = 0                 # all of them, warm-up included
        self.server_errors: list[str] = []  # every 5xx (the first 50), whichever window or client
        self.server_error_count = 0

    def record(self, route: str, seconds: float, status: int | str, detail: str = "") -> None:
        """Latency is kept for answered requests only: a 429 is counted, not timed (it is cheap by design).
        ``status`` is the HTTP status, "ok" for a hostile request answered as expected, or an exception's name."""
        with self.lock:
            if status != 429:
                self.latency[route].append(seconds)
            self.status[route][status] += 1
            if isinstance(status, int) and status >= 500:
                self.server_error_count += 1
                if len(self.server_errors) < 50:
                    self.server_errors.append(f"{route}: {status} {detail[:300]}")
            if _failed(status):
                self.failed += 1
                if len(self.failures) < 50:
                    self.failures.append(f"{route}: {status} {detail[:300]}")

    def reset(self) -> tuple[int, dict, list]:
        """Start a new window: forget timings and counts, keep failures; returns the requests, summary and normal
        latencies (s) of the window that ends."""
        with self.lock:
            n = sum(len(v) for v in self.latency.values())
            summary = self.summary()
            normal = [x for route, v in self.latency.items() if not route.startswith("hostile") for x in v]
            self.latency.clear()
            self.status.clear()
            return n, summary, normal

    def summary(self) -> dict:
        out = {}
        for route in sorted(self.status):
            arr = np.asarray(self.latency.get(route) or [0.0]) * 1000
            st = self.status[route]
            out[route] = {"requests": len(self.latency.get(route, [])), "rate_limited_429": st.get(429, 0),
                          "failed": sum(n for s, n in st.items() if _failed(s)),
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

    def hostile(self, route: str, method: str, url: str, expect: tuple, **kw) -> requests.Response | None:
        """A hostile request, retried after a 429 like the normal ones: answered with one of ``expect`` (4xx,
        mostly) it counts "ok"; any other answer is a failure."""
        api = "prediction" if url.startswith(PREDICT) else "training"
        headers = {"Prediction-Key" if api == "prediction" else "Training-Key":
                   self.srv.prediction_key if api == "prediction" else self.srv.training_key, **kw.pop("headers", {})}
        base = "" if url.startswith("http") else self.srv.endpoint
        while True:
            t0 = time.perf_counter()
            try:
                r = self.s.request(method, base + url, headers=headers, timeout=REQUEST_TIMEOUT, **kw)
            except requests.RequestException as exc:
                self.stats.record(route, time.perf_counter() - t0, type(exc).__name__, str(exc))
                return None
            dt = time.perf_counter() - t0
            if r.status_code == 429 and 429 not in expect:
                self.stats.record(route, dt, 429)
                if self.stop.is_set():
                    return None
                time.sleep(min(float(r.headers.get("Retry-After", "1")), 1.0) * random.random() + 0.05)
                continue
            good = r.status_code in expect
            self.stats.record(route, dt, "ok" if good else r.status_code, "" if good else r.text)
            return r


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


# ---- hostile clients (issue 22) -----------------------------------------------------------------------------------
class _Source(http.server.BaseHTTPRequestHandler):
    """The web host hostile URLs point at: /drip sends a body byte every 0.5 s, /hang never answers (both give up
    after 20 s, longer than the server's fetch deadline)."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        try:
            if self.path.startswith("/drip"):
                self.send_response(200)
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                for _ in range(40):
                    time.sleep(0.5)
                    self.wfile.write(b"\xff")
                    self.wfile.flush()
            else:
                time.sleep(20)
        except OSError:
            pass

    def log_message(self, *args):
        pass


def hostile_source() -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def bomb_png(seed: int) -> bytes:
    """A legal 10,240 x 10,240 1-bit PNG of a few tens of kB (~100 MB once decoded)."""
    from PIL import Image, ImageDraw
    im = Image.new("1", (10240, 10240))
    draw = ImageDraw.Draw(im)
    for x in range(seed % 16, 10240, 16 + seed % 7):
        draw.line([(x, 0), (x, 10239)], fill=1)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


AMPLIFIED = ('{"tags": [' + ",".join(["0"] * 1_000_000) + "]}").encode()  # 2 MB, a million bad values
MANY_PARTS = b"".join(b'--xyz\r\nContent-Disposition: form-data; name="imageData"\r\n\r\n\r\n'
                      for _ in range(80_659)) + b"--xyz--\r\n"
HOSTILE_OPS = ["amplified body", "many parts", "slow url", "hanging url", "loopback url", "bomb upload",
               "bomb thumbnail", "bad unicode"]


def hostile_worker(c: Client, ids: dict, n: int, seed: int, source: str, bombs: list[bytes]) -> None:
    """One learner doing issue 22's attacks in a loop; every answer must be the expected 4xx (or a 207, a 200
    for a legal image), never a 5xx or a dropped connection."""
    rnd = random.Random(seed * 7919 + n)
    m, u, publish = ids["model"], ids["uploads"], ids["publish_name"]
    thumbnails: list[str] = []
    k = 0
    while not c.stop.is_set():
        op = rnd.choice(HOSTILE_OPS)
        k += 1
        route = f"hostile {op}"
        if op == "amplified body":
            c.hostile(route, "POST", TRAIN + f"/projects/{u}/images/tags", (400,), data=AMPLIFIED,
                      headers={"Content-Type": "application/json"})
        elif op == "many parts":
            c.hostile(route, "POST", TRAIN + f"/projects/{u}/images", (400,), data=MANY_PARTS,
                      headers={"Content-Type": "multipart/form-data; boundary=xyz"})
        elif op in ("slow url", "hanging url", "loopback url"):
            url = {"slow url": source + "/drip", "hanging url": source + "/hang",
                   "loopback url": c.srv.endpoint + TRAIN + "/projects"}[op]
            c.hostile(route, "POST", PREDICT + f"/{m}/classify/iterations/{publish}/url/nostore", (400, 429),
                      json={"url": url})
        elif op == "bomb upload":
            r = c.hostile(route, "POST", TRAIN + f"/projects/{u}/images", (200,), data=bombs[k % len(bombs)],
                          headers={"Content-Type": "application/octet-stream"})
            if r is not None and r.status_code == 200 and r.json()["images"][0].get("image"):
                thumbnails.append(r.json()["images"][0]["image"]["thumbnailUri"])
                thumbnails.append(r.json()["images"][0]["image"]["resizedImageUri"])
        elif op == "bomb thumbnail" and thumbnails:
            c.hostile(route, "GET", rnd.choice(thumbnails), (200,))
        elif op == "bad unicode":
            choice = k % 3
            if choice == 0:
                c.hostile(route, "POST", TRAIN + f"/projects/{u}/tags?name=%ED%A0%80{k}", (400,))
            elif choice == 1:
                c.hostile(route, "PATCH", TRAIN + f"/projects/{u}/tags/{ids['upload_tag']}", (400,),
                          data='{"name": "q\\ud800"}', headers={"Content-Type": "application/json"})
            else:
                c.hostile(route, "POST", TRAIN + f"/projects/{m}/predictions/query", (400,),
                          data='{"session": "\\udfff"}', headers={"Content-Type": "application/json"})


def _p95_ms(latencies: list) -> float:
    return round(float(np.percentile(np.asarray(latencies or [0.0]) * 1000, 95)), 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600, help="the hostile window (normal + hostile clients)")
    ap.add_argument("--clients", type=int, default=16, help="clients in all, hostile ones included")
    ap.add_argument("--hostile", type=int, default=3, help="how many of the clients attack (default %(default)s)")
    ap.add_argument("--quiet-seconds", type=float, default=None, help="the quiet window before it, normal clients "
                    "only (default: a quarter of --seconds, at least 15 s; 0 skips it)")
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
    hostile = max(0, min(args.hostile, args.clients - 2))
    quiet_seconds = args.quiet_seconds if args.quiet_seconds is not None else max(15.0, args.seconds / 4)
    tmp = None
    if args.workspace is None:
        tmp = tempfile.TemporaryDirectory(prefix="cvlab-soak-")
        args.workspace = Path(tmp.name) / "ws"
    stats = Stats()
    server_stacks = ""
    source = hostile_source()
    source_url = f"http://127.0.0.1:{source.server_address[1]}"
    os.environ["CVLAB_ALLOW_PRIVATE_URLS"] = f"127.0.0.1:{source.server_address[1]}"  # a lab's own image host
    bombs = [bomb_png(i) for i in range(4)] if hostile else []
    t_setup = time.perf_counter()
    srv = Server(Path(args.workspace))
    quiet, quiet_normal, quiet_s = {}, [], 0.0
    try:
        ids = setup(srv, stats, args.seed)
        setup_s = time.perf_counter() - t_setup
        stop = threading.Event()
        clients = [Client(srv, stats, stop) for _ in range(args.clients)]
        cycled = threading.Event()
        threads = [threading.Thread(target=trainer, args=(clients[0], ids, cycled), name="soak-trainer", daemon=True)]
        threads += [threading.Thread(target=worker, args=(c, ids, i, args.seed), name=f"soak-{i}", daemon=True)
                    for i, c in enumerate(clients[1:args.clients - hostile], 1)]
        attackers = [threading.Thread(target=hostile_worker, args=(c, ids, i, args.seed, source_url, bombs),
                                      name=f"soak-hostile-{i}", daemon=True)
                     for i, c in enumerate(clients[args.clients - hostile:], args.clients - hostile)]
        for t in threads:
            t.start()
        # warm-up: every code path (training, export, both predictor backends) has run once before the baseline
        warmup = args.warmup if args.warmup is not None else max(5.0, 0.1 * args.seconds)
        w0 = time.monotonic()
        time.sleep(warmup)
        if not cycled.wait(2 * JOB_TIMEOUT):
            stats.record("trainer", 0.0, "NoCycle", f"no train+export cycle finished in {2 * JOB_TIMEOUT} s")
        warmup_s = time.monotonic() - w0
        warmup_requests, _, _ = stats.reset()
        start_res = srv.resources()
        samples = [start_res]

        def measure(seconds: float) -> float:
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                time.sleep(min(5.0, max(0.0, seconds - (time.monotonic() - t0))))
                samples.append(srv.resources())
            return time.monotonic() - t0
        quiet_end = start_res
        if quiet_seconds > 0:
            quiet_s = measure(quiet_seconds)
            quiet_end = srv.resources()
            _, quiet, quiet_normal = stats.reset()
        for t in attackers:
            t.start()
        elapsed = measure(args.seconds)
        end_res = srv.resources()
        stop.set()  # clients finish what they started (the trainer its cycle), so the server stops idle
        join_deadline = time.monotonic() + 2 * JOB_TIMEOUT
        for t in threads + attackers:
            t.join(max(0.1, join_deadline - time.monotonic()))
        hung = [t.name for t in threads + attackers if t.is_alive()]
        if hung:
            stats.record("hung", 0.0, "Hung", f"clients still waiting {2 * JOB_TIMEOUT} s after the stop: {hung}")
            server_stacks = srv.dump_stacks()[-20000:]
    finally:
        rc = srv.stop()
        source.shutdown()
    from cvlab.workspace import Workspace
    ws = Workspace(args.workspace)
    report = ws.check()
    ws.close()
    _, routes, normal = stats.reset()
    for r in (routes, quiet):
        r.pop("setup", None)
        r.pop("setup poll", None)
    total = sum(r["requests"] for r in routes.values())
    failed = stats.failed
    growth = {k: round((end_res[k] - start_res[k]) / max(start_res[k], 1e-9), 3) for k in ("rss_mb", "open_fds")}
    quiet_growth = {k: round((quiet_end[k] - start_res[k]) / max(start_res[k], 1e-9), 3) for k in ("rss_mb",
                                                                                                  "open_fds")}
    rss_growth_mb = round(end_res["rss_mb"] - start_res["rss_mb"], 1)
    p95 = {"quiet_ms": _p95_ms(quiet_normal), "with_hostile_ms": _p95_ms(normal)}
    p95["ratio"] = round(p95["with_hostile_ms"] / p95["quiet_ms"], 2) if quiet_normal else None
    per_route = {route: round(r["p95_ms"] / quiet[route]["p95_ms"], 2) for route, r in routes.items()
                 if route in quiet and quiet[route]["p95_ms"] > 0 and not route.startswith("hostile")}
    result = {
        "seconds": round(elapsed, 1), "quiet_seconds": round(quiet_s, 1), "clients": args.clients,
        "hostile_clients": hostile, "seed": args.seed, "setup_seconds": round(setup_s, 1),
        "requests": total, "requests_per_second": round(total / elapsed, 1), "failed": failed,
        "server_errors_5xx": stats.server_error_count, "server_error_samples": stats.server_errors[:10],
        "rate_limited_429": sum(r["rate_limited_429"] for r in routes.values()),
        "warmup_seconds": round(warmup_s, 1), "warmup_requests": warmup_requests,
        "normal_p95": p95, "normal_p95_ratio_per_route": per_route,
        "failures": stats.failures[:20], "routes": routes, "quiet_routes": quiet,
        **({"server_stacks": server_stacks} if server_stacks else {}),
        "server_start": start_res, "server_quiet_end": quiet_end, "server_end": end_res,
        "quiet_growth": quiet_growth, "growth": growth, "rss_growth_mb": rss_growth_mb,
        "server_rss_mb_max": max(s["rss_mb"] for s in samples), "server_exit_code": rc,
        "server_rss_mb_every_5s": [s["rss_mb"] for s in samples],
        "integrity": {k: report[k] for k in ("ok", "sqlite_integrity", "counts", "missing_blobs", "corrupt_blobs",
                                             "orphan_blobs", "temp_files", "export_temp_dirs")},
    }
    result["goals"] = {"no_5xx": stats.server_error_count == 0, "p95_ratio_at_most_1.5": bool(p95["ratio"] is not None
                                                                                        and p95["ratio"] <= 1.5),
                       "rss_growth_under_100_mb": rss_growth_mb < 100}
    # descriptors: the SQLite pool may open up to its limit (a database, its -wal and -shm each), which is
    # bounded, not a leak; a descriptor lost per request passes that bound within the hundreds of requests here
    fd_growth = quiet_end["open_fds"] - start_res["open_fds"]
    result["open_fds_growth"] = {"count": fd_growth, "allowed": FD_ALLOWANCE}
    result["passed"] = bool(failed == 0 and stats.server_error_count == 0 and report["ok"]
                            and quiet_growth["rss_mb"] <= 0.10 and fd_growth <= FD_ALLOWANCE)
    print(json.dumps(result, indent=2))
    if tmp is not None:
        tmp.cleanup()
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Service parts that need no server: wire format, keys, rate limits, URL fetching, `cvlab serve` settings."""
from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
import requests

from cvlab.errors import CvlabError
from cvlab.cli import serve as cli
from cvlab.service import auth, quotas, wire
from cvlab.service.fetch import fetch_image
from cvlab.service.server import warn_if_exposed


def test_dates_are_utc_milliseconds_with_z():
    t = datetime(2024, 3, 10, 6, 10, 28, 906666, tzinfo=timezone(timedelta(hours=2)))
    assert wire.dt(t) == "2024-03-10T04:10:28.906Z"
    assert wire.dt(datetime(2024, 1, 1)) == "2024-01-01T00:00:00.000Z"  # naive means UTC
    assert wire.dt(None) is None
    assert wire.parse_dt("2017-12-18T22:40:36.9066667Z") == datetime(2017, 12, 18, 22, 40, 36, 906666,
                                                                     tzinfo=timezone.utc)


def test_keys_are_made_once_and_kept(ws, monkeypatch):
    monkeypatch.delenv("CVLAB_TRAINING_KEY", raising=False)
    monkeypatch.delenv("CVLAB_PREDICTION_KEY", raising=False)
    first = auth.resolve_keys(ws)
    assert len(first.training_key) == 32 and first.training_key != first.prediction_key
    assert auth.resolve_keys(ws) == first
    assert "Microsoft.CognitiveServices/accounts/" in first.prediction_resource_id
    assert first.training_key not in repr(first)
    monkeypatch.setenv("CVLAB_TRAINING_KEY", "from-env")
    assert auth.resolve_keys(ws).training_key == "from-env"
    assert auth.resolve_keys(ws, training_key="explicit").training_key == "explicit"
    with pytest.raises(ValueError):
        auth.resolve_keys(ws, training_key="same", prediction_key="same")


def test_key_lookup_accepts_every_header_spelling():
    from starlette.datastructures import Headers
    for name in ("Training-Key", "training-key", "TRAINING-KEY", "Ocp-Apim-Subscription-Key"):
        found = auth.presented_keys(Headers({name: "k1"}), {}, "training")
        assert auth.key_ok(found, "k1") and not auth.key_ok(found, "k2")
    assert not auth.key_ok(auth.presented_keys(Headers({"Prediction-Key": "k1"}), {}, "training"), "k1")
    assert auth.key_ok(auth.presented_keys(Headers({}), {"Prediction-Key": "k1"}, "prediction"), "k1")


class _Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_rate_limiter_follows_the_tier(ws):
    clock = _Clock()
    limiter = quotas.RateLimiter(ws, clock=clock)
    ws.set_tier("F0")
    op = quotas.classify_request("prediction", "POST", "/p/classify/iterations/x/image")
    assert op == quotas.PREDICT_STORE
    assert [limiter.acquire(op) for _ in range(3)] == [None, None, 1]  # F0: 2 per second
    clock.t += 0.5  # one token back after half a second
    assert limiter.acquire(op) is None and limiter.acquire(op) == 1
    assert "F0 pricing tier" in limiter.message(op, "prediction", 1)
    ws.set_tier("S0")
    nostore = quotas.classify_request("prediction", "POST", "/p/classify/iterations/x/image/nostore")
    assert [limiter.acquire(nostore) for _ in range(21)].count(None) == 20
    assert quotas.classify_request("training", "POST", "/projects/p/train") == quotas.TRAIN
    assert quotas.classify_request("training", "GET", "/projects") == quotas.OTHER
    limiter.enabled = False
    assert all(limiter.acquire(nostore) is None for _ in range(50))


@pytest.fixture(scope="module")
def host():
    routes = {"/small.jpg": (b"\xff\xd8" + b"x" * 100, True), "/big.jpg": (b"\xff\xd8" + b"x" * 5000, True),
              "/chunked.jpg": (b"x" * 5000, False)}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self):
            if self.path not in routes:
                self.send_response(404)
                self.end_headers()
                return
            data, with_length = routes[self.path]
            self.send_response(200)
            if with_length:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with pytest.MonkeyPatch.context() as mp:  # URL fetches refuse loopback unless the lab allows its image server
        mp.setenv("CVLAB_ALLOW_PRIVATE_URLS", "1")
        yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_image_bounds_size_and_scheme(host):
    assert fetch_image(f"{host}/small.jpg", 1000)[:2] == b"\xff\xd8"
    for url, code in ((f"{host}/big.jpg", "BadRequestImageSizeBytes"),       # told by Content-Length
                      (f"{host}/chunked.jpg", "BadRequestImageSizeBytes"),   # counted while streaming
                      (f"{host}/missing.jpg", "BadRequestImageUrl"),
                      ("file:///etc/hostname", "BadRequestImageUrl"),
                      ("ftp://127.0.0.1/x.jpg", "BadRequestImageUrl"),
                      ("http://127.0.0.1:1/x.jpg", "BadRequestImageUrl")):
        with pytest.raises(CvlabError) as e:
            fetch_image(url, 1000)
        assert e.value.code == code, url


def test_env_file_has_both_spellings(tmp_path):
    keys = auth.ServiceKeys("tk", "pk", "/subscriptions/x")
    path = cli.write_env_file(tmp_path / ".env", "http://127.0.0.1:8080", keys)
    values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    assert values["TrainingKey"] == values["VISION_TRAINING_KEY"] == "tk"
    assert values["PredictionEndpoint"] == values["VISION_PREDICTION_ENDPOINT"] == "http://127.0.0.1:8080"
    assert values["PredictionResourceId"] == values["VISION_PREDICTION_RESOURCE_ID"] == "/subscriptions/x"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_binding_elsewhere_warns():
    assert warn_if_exposed("127.0.0.1") is None
    assert "exposes" in warn_if_exposed("0.0.0.0")


def test_cvlab_serve_prints_what_the_sdk_needs(tmp_path):
    env = {**os.environ, "CVLAB_TRAINING_KEY": "train-key-1", "CVLAB_PREDICTION_KEY": "pred-key-1"}
    code = ("import sys; from cvlab.cli import serve as cli; import argparse; p = argparse.ArgumentParser(); "
            "cli.configure(p); sys.exit(cli.run(p.parse_args(sys.argv[1:])))")
    proc = subprocess.Popen([sys.executable, "-c", code, "--workspace", str(tmp_path / "ws"), "--port", "0",
                             "--tier", "F0", "--env-file", str(tmp_path / ".env"), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl+C"):
                break
        out = "".join(lines)
        assert "Training key:            train-key-1" in out and "Prediction key:          pred-key-1" in out
        assert "(tier F0)" in out and "Prediction resource id:" in out
        endpoint = next(l.split()[-1] for l in lines if "Training endpoint:" in l)
        r = requests.get(f"{endpoint}/customvision/v3.4-preview/training/domains",
                         headers={"Training-Key": "train-key-1"}, timeout=10)
        assert r.status_code == 200 and len(r.json()) >= 16
        assert "VISION_TRAINING_KEY=train-key-1" in (tmp_path / ".env").read_text()
    finally:
        proc.terminate()
        proc.wait(10)


def test_undefined_metrics_are_null_on_the_wire():
    from cvlab.metrics import Undefined
    from cvlab.performance import IterationPerformance, TagPerformance
    tag = TagPerformance("t1", "rust", 1.0, Undefined("one fold"), 0.5, Undefined("one fold"), Undefined("none"))
    perf = IterationPerformance([tag], 1.0, Undefined("one fold"), 0.5, Undefined("one fold"), 0.75)
    body = wire.iteration_performance(perf)
    assert body["precision"] == 1.0 and body["precisionStdDeviation"] is None and body["averagePrecision"] == 0.75
    assert body["perTagPerformance"][0] == {"id": "t1", "name": "rust", "precision": 1.0,
                                            "precisionStdDeviation": None, "recall": 0.5,
                                            "recallStdDeviation": None, "averagePrecision": None}


def test_served_connections_have_nagle_off():
    """asyncio sets TCP_NODELAY only on sockets that say proto TCP; without it every response uvicorn writes in
    two pieces waited ~40 ms for the client's delayed ACK (HTTP p50 64 ms -> 17 ms for a 640 px classify)."""
    import asyncio
    import socket

    from cvlab.service.server import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    assert sock.proto == socket.IPPROTO_TCP
    seen = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport):
            seen.append(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def main():
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        await reader.read()  # closed by the probe
        writer.close()
        server.close()

    asyncio.run(main())
    assert seen == [1]

"""Oversized request bodies against a real server on 127.0.0.1, over a raw socket: a Content-Length over the
route's cap is refused before the body is read, a chunked body the moment it passes the cap; the answer is the
right 4xx with an Azure code, the server closes the connection instead of reading on, and its memory does not
grow by the body's size."""
from __future__ import annotations

import json
import re
import select
import socket
import time
from pathlib import Path

import pytest

from cvlab import rules
from cvlab.service import start_background
from cvlab.service.app import PREDICTION_PREFIX, TRAINING_PREFIX
from cvlab.workspace import Workspace
from helpers import Api, snapshot

pytestmark = pytest.mark.timeout(120)

MB = 2**20
BODY = 256 * MB  # what the client would send if nobody stopped it
BLOCK = b"\0" * MB


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("bodies") / "ws")
    handle = start_background(ws, rate_limits=False)
    p = ws.create_project("bodies")
    yield handle, ws, p.id
    handle.stop()
    ws.close()


def _peak_rss_reset() -> bool:
    """Reset this process's peak RSS (VmHWM); the server runs in a thread of it. False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _rss(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) * 1024


def _send(handle, method: str, path: str, headers: dict, chunked: bool, total: int = BODY) -> dict:
    """Send ``total`` bytes (chunked, or as declared by the caller's Content-Length) until the server answers;
    returns the status, headers and JSON body of the answer, the bytes sent, whether the server closed the
    connection, and the seconds taken."""
    sock = socket.create_connection((handle.host, handle.port), timeout=30)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {handle.host}:{handle.port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    start = time.monotonic()
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sock.setblocking(False)
    sent, answered = 0, False
    framed = (f"{len(BLOCK):x}\r\n".encode() + BLOCK + b"\r\n") if chunked else BLOCK
    while sent < total and not answered:
        view = memoryview(framed)
        while view and not answered:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                answered = True
            elif writable:
                try:
                    n = sock.send(view)
                except (BrokenPipeError, ConnectionResetError):
                    answered = True
                    break
                view = view[n:]
                sent += n
            else:
                raise AssertionError("the server neither read on nor answered for 10 s")
    sock.setblocking(True)
    raw, closed = b"", False
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            closed = True
            break
        except socket.timeout:
            break
        if not data:
            closed = True
            break
        raw += data
    sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    hdrs = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    return {"status": int(status_line.split()[1]), "headers": hdrs, "json": json.loads(body), "sent": sent,
            "closed": closed, "seconds": time.monotonic() - start}


def _prediction_path(pid: str) -> str:
    return f"{PREDICTION_PREFIX}/{pid}/classify/iterations/live/image/nostore"


CASES = {  # name: (api, path template, content type, expected status, expected code, cap)
    "prediction image": ("prediction", _prediction_path("{pid}"), "application/octet-stream", 413,
                         "BadRequestImageSizeBytes", rules.limit("max_image_bytes_prediction")),
    "training multipart batch": ("training", TRAINING_PREFIX + "/projects/{pid}/images",
                                 "multipart/form-data; boundary=xyz", 413, "BadRequestImageSizeBytes",
                                 rules.limit("images_per_batch") * rules.limit("max_image_bytes_training")),
    "JSON regions": ("training", TRAINING_PREFIX + "/projects/{pid}/images/regions", "application/json", 413,
                     "BadRequestInvalid", 32 * MB),
}


def _key(handle, api: str) -> dict:
    return {"Training-Key": handle.training_key} if api == "training" else {"Prediction-Key": handle.prediction_key}


@pytest.mark.parametrize("name", ["prediction image", "JSON regions"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_body_is_refused_without_reading_it(served, name, chunked):
    handle, ws, pid = served
    api, path, ctype, status, code, cap = CASES[name]
    headers = {**_key(handle, api), "Content-Type": ctype}
    if not chunked:
        headers["Content-Length"] = str(BODY)
    before = snapshot(ws)
    measured = _peak_rss_reset()
    base = _rss("VmRSS")
    got = _send(handle, "POST", path.format(pid=pid), headers, chunked)
    assert got["status"] == status and got["json"]["code"] == code, got
    assert "MB" in got["json"]["message"]
    assert got["headers"].get("connection") == "close" and got["closed"], got["headers"]
    # Refused from the header: the server read nothing. Chunked: it stopped at the cap; what the client got
    # out beyond that sat in the two sockets' buffers (a few MB on loopback), never in the server.
    assert got["sent"] < (16 * MB if not chunked else cap + 24 * MB), got["sent"] / MB
    assert got["seconds"] < 10
    if measured:
        assert _rss("VmHWM") - base < 64 * MB, (_rss("VmHWM") - base) / MB
    assert snapshot(ws) == before
    assert Api(handle.endpoint, handle.training_key, handle.prediction_key).healthy()


def test_oversized_batch_is_refused_from_content_length(served):
    """A multipart upload declaring more than 64 images of 6 MB can hold: refused before a byte is read."""
    handle, ws, pid = served
    api, path, ctype, status, code, cap = CASES["training multipart batch"]
    headers = {**_key(handle, api), "Content-Type": ctype, "Content-Length": str(2 * cap)}
    got = _send(handle, "POST", path.format(pid=pid), headers, chunked=False, total=2 * MB)
    assert got["status"] == status and got["json"]["code"] == code and got["closed"], got
    assert "64 images of at most 6 MB" in got["json"]["message"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_raw_training_image_is_a_per_image_error(served, chunked):
    """One raw image over 6 MB: Azure's 207 with ErrorImageSize, answered after at most 6 MB were read."""
    handle, ws, pid = served
    headers = {**_key(handle, "training"), "Content-Type": "application/octet-stream"}
    if not chunked:
        headers["Content-Length"] = str(BODY)
    before = snapshot(ws)
    got = _send(handle, "POST", TRAINING_PREFIX + f"/projects/{pid}/images", headers, chunked)
    assert got["status"] == 207, got
    assert got["json"]["isBatchSuccessful"] is False
    assert [i["status"] for i in got["json"]["images"]] == ["ErrorImageSize"]
    assert got["closed"] and got["sent"] < rules.limit("max_image_bytes_training") + 24 * MB, got["sent"] / MB
    assert snapshot(ws) == before


def test_bodies_under_the_cap_still_work(served):
    """The caps leave valid requests alone: a chunked JSON body and a chunked image upload go through."""
    from helpers import colour_jpeg
    handle, ws, pid = served
    api = Api(handle.endpoint, handle.training_key, handle.prediction_key)
    r = api.t("POST", f"/projects/{pid}/images", data=iter([colour_jpeg((10, 200, 10), seed=5)]),
              headers={"Content-Type": "application/octet-stream"})  # a generator: requests sends it chunked
    assert r.status_code == 200 and r.json()["images"][0]["status"] == "OK", r.text
    r = api.t("POST", f"/projects/{pid}/tags", params={"name": "chunky"})
    assert r.status_code == 200, r.text
    image_id = ws.get_images(pid, take=1)[0].id
    body = json.dumps({"tags": [{"imageId": image_id, "tagId": r.json()["id"]}]}).encode()
    r = api.t("POST", f"/projects/{pid}/images/tags", data=iter([body[:10], body[10:]]),
              headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text

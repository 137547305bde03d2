"""Helpers shared by the reliability/hostile/fault tests: tiny images, a REST client with keys, a snapshot of
everything a workspace stores (to prove a refused request changed nothing)."""
from __future__ import annotations

import hashlib
import io
import struct
import time
import zlib
from contextlib import contextmanager

import numpy as np
import requests
from PIL import Image
from cvlab.datasets.swatches import swatch_jpeg

TRAIN = "/customvision/v3.4-preview/training"
PREDICT = "/customvision/v3.1/prediction"


def png(w: int, h: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def colour_jpeg(rgb, seed: int, size: int = 64) -> bytes:
    return swatch_jpeg(rgb, seed, size)


def png_with_declared_size(w: int, h: int) -> bytes:
    """A tiny PNG whose header claims w x h pixels: a decompression bomb's header, without the bomb."""
    raw = png(1, 1)
    ihdr_at = raw.index(b"IHDR")
    body = struct.pack(">II", w, h) + raw[ihdr_at + 12:ihdr_at + 17]
    chunk = b"IHDR" + body
    patched = raw[:ihdr_at] + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF) + raw[ihdr_at + 21:]
    return patched


class Api:
    """requests against a running endpoint with the right key for each API."""

    def __init__(self, endpoint: str, training_key: str, prediction_key: str):
        self.base = endpoint.rstrip("/")
        self.tk, self.pk = training_key, prediction_key
        self.s = requests.Session()

    def t(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"Training-Key": self.tk, **kw.pop("headers", {})}
        kw.setdefault("timeout", 60)
        return self.s.request(method, self.base + TRAIN + path, headers=headers, **kw)

    def p(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"Prediction-Key": self.pk, **kw.pop("headers", {})}
        kw.setdefault("timeout", 60)
        return self.s.request(method, self.base + PREDICT + path, headers=headers, **kw)

    def healthy(self) -> bool:
        r = self.t("GET", "/projects", timeout=10)
        return r.status_code == 200 and isinstance(r.json(), list)

    def wait_trained(self, pid: str, iid: str, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            it = self.t("GET", f"/projects/{pid}/iterations/{iid}").json()
            if it["status"] not in ("Training", "Queued") or time.monotonic() > deadline:
                return it
            time.sleep(0.3)


def assert_azure_error(r: requests.Response, status_class: int = 4, code: str | None = None) -> dict:
    """A 4xx (or the given class) with Azure's {code, message} JSON body; returns the body."""
    assert r.status_code // 100 == status_class, (r.status_code, r.text[:500])
    body = r.json()
    assert isinstance(body.get("code"), str) and body["code"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    if code is not None:
        assert body["code"] == code, body
    return body


def snapshot(ws) -> dict:
    """Everything stored that a refused request must not change: rows per table, each image with its blob
    hash and labels, tags, iterations and exports."""
    out = {"counts": ws.check(verify_hashes=False)["counts"]}
    for p in ws.get_projects():
        imgs = []
        for img in ws.iter_images(p.id):
            blob = hashlib.sha256(ws.image_path(img).read_bytes()).hexdigest()
            imgs.append((img.id, img.sha256, blob, sorted(t.tag_id for t in img.tags),
                         sorted((r.tag_id, round(r.left, 6), round(r.top, 6)) for r in img.regions)))
        out[p.id] = {"name": p.name, "images": sorted(imgs),
                     "tags": sorted((t.id, t.name) for t in ws.get_tags(p.id)),
                     "iterations": sorted((i.id, i.status) for i in ws.get_iterations(p.id))}
    return out


def stored_text_problems(ws) -> list[str]:
    """Every stored text that is not valid Unicode: TEXT columns that do not decode as UTF-8 and, inside the JSON
    ones (metadata, settings...), strings holding a lone surrogate. Empty when the workspace is clean."""
    import json as _json
    import sqlite3

    from cvlab import rules
    problems = []
    conn = sqlite3.connect(str(ws.path / "cvlab.db"))
    conn.text_factory = bytes
    try:
        tables = [r[0].decode() for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if not isinstance(value, bytes):
                        continue
                    try:
                        text = value.decode("utf-8")
                    except UnicodeDecodeError:
                        problems.append(f"{table}: not UTF-8: {value[:60]!r}")
                        continue
                    if text[:1] in "[{":
                        try:
                            stack = [_json.loads(text)]
                        except ValueError:
                            continue
                        while stack:
                            v = stack.pop()
                            if isinstance(v, dict):
                                stack.extend(v.keys())
                                stack.extend(v.values())
                            elif isinstance(v, list):
                                stack.extend(v)
                            elif isinstance(v, str) and rules.unicode_problem(v):
                                problems.append(f"{table}: {rules.unicode_problem(v)}")
    finally:
        conn.close()
    return problems


@contextmanager
def published_colours(trained_colours):
    """A server on a copy of the trained colours workspace, its iteration published as "live":
    yields (ws, handle, api, info)."""
    from cvlab.service import start_background
    from cvlab.workspace import Workspace
    path, info = trained_colours()
    ws = Workspace(path)
    handle = start_background(ws, rate_limits=False)
    api = Api(handle.endpoint, handle.training_key, handle.prediction_key)
    r = api.t("POST", f"/projects/{info['project_id']}/iterations/{info['iteration_id']}/publish",
              params={"publishName": "live", "predictionId": handle.prediction_resource_id})
    assert r.status_code == 200, r.text
    try:
        yield ws, handle, api, dict(info, root=path.parent)
    finally:
        handle.stop()
        ws.close()

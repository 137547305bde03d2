"""Helpers the test modules share: image factories, hand-written evaluation records, a REST client with keys, a
snapshot of everything a workspace stores. Fixtures live in ``conftest.py``; test modules import from here."""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import random
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import requests
from PIL import Image, ImageDraw

from cvlab.datasets.swatches import swatch_jpeg
from cvlab.service.process import ServeProcess as _ServeProcess

COMPACT = "0732100f-1a38-4e49-a514-c9b44c697ab5"      # General (compact) classification: Lite0 at 224 px, cheap
OD_COMPACT = "a27d5ca5-bb19-49d8-a70a-fec086c47f5b"   # General (compact) object detection

TRAIN = "/customvision/v3.4-preview/training"
PREDICT = "/customvision/v3.1/prediction"


# ---- images ----------------------------------------------------------------------------------------------------
def encode(img: Image.Image, fmt: str = "JPEG", **save_kwargs) -> bytes:
    """The image's file bytes (JPEG quality 90 unless told otherwise)."""
    if fmt == "JPEG":
        save_kwargs.setdefault("quality", 90)
    buf = io.BytesIO()
    img.save(buf, fmt, **save_kwargs)
    return buf.getvalue()


def make_image_bytes(w: int = 320, h: int = 240, color=None, seed: int | None = 0, fmt: str = "JPEG",
                     **save_kwargs) -> bytes:
    """Small image bytes: a solid `color` or (default) seeded noise, so different seeds give different hashes."""
    if color is not None:
        img = Image.new("RGB", (w, h), color)
    else:
        rng = np.random.default_rng(seed)
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, fmt, **save_kwargs)
    return buf.getvalue()


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


def jpeg_with_orientation(w, h, orientation):
    """A JPEG whose left half is red, carrying an EXIF orientation tag."""
    img = Image.new("RGB", (w, h), (0, 0, 0))
    img.paste((255, 0, 0), (0, 0, w // 2, h))  # left half red
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def scene(kind: str, seed: int, size: int = 96) -> bytes:
    """Tiny synthetic photos an ImageNet trunk tells apart: a red disc, blue stripes, or a plain green field."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(90, 160, (size, size, 3), dtype=np.uint8))
    d = ImageDraw.Draw(img)
    j = int(rng.integers(-8, 8))
    if kind == "disc":
        d.ellipse([20 + j, 20 - j, 76 + j, 76 - j], fill=(220, 30, 30))
    elif kind == "stripes":
        for x in range(0, size, 16):
            d.rectangle([x + j % 4, 0, x + 7 + j % 4, size], fill=(30, 40, 220))
    else:  # a noisy green field: nothing of the other tags
        arr = np.asarray(img).copy()
        arr[..., 1] = np.clip(arr[..., 1].astype(int) + 80, 0, 255)
        arr[..., 0] //= 2
        img = Image.fromarray(arr)
    return encode(img)


def shape(kind: str, seed: int, size: int = 96) -> bytes:
    """A red disc or blue stripes on noise, not jittered: two classes an ImageNet trunk separates at once."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(90, 160, (size, size, 3), dtype=np.uint8))
    d = ImageDraw.Draw(img)
    if kind == "disc":
        d.ellipse([20, 20, 76, 76], fill=(220, 30, 30))
    else:
        for x in range(0, size, 16):
            d.rectangle([x, 0, x + 7, size], fill=(30, 40, 220))
    return encode(img)


def shape_jpeg(kind: str, seed: int, size: int = 96) -> bytes:
    """Red discs vs blue squares on random backgrounds: learnable from a handful of images."""
    r = random.Random(seed)
    image = Image.new("RGB", (size, size), tuple(r.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    x, y, s = r.randrange(5, size // 2), r.randrange(5, size // 2), r.randrange(size // 4, size // 2)
    if kind == "round":
        draw.ellipse([x, y, x + s, y + s], fill=(230, 30, 30))
    else:
        draw.rectangle([x, y, x + s, y + s], fill=(30, 30, 230))
    return encode(image)


def add(ws, project_id, kind, tag_ids, n, start=0, metadata=None) -> list[str]:
    """``n`` ``scene(kind)`` images tagged ``tag_ids``; returns their image ids."""
    from cvlab.workspace import ImageEntry

    entries = [ImageEntry(data=scene(kind, start + i), name=f"{kind}{start + i}.jpg", tag_ids=tuple(tag_ids))
               for i in range(n)]
    summary = ws.create_images(project_id, entries, metadata=metadata)
    assert summary.is_batch_successful, summary
    return [r.image.id for r in summary.images]


# ---- hand-written evaluation records (evaluation.json) ---------------------------------------------------------
CAT, DOG, NEG = "c0000000-0000-0000-0000-000000000001", "d0000000-0000-0000-0000-000000000002", \
    "e0000000-0000-0000-0000-000000000003"
TAGS = [{"id": CAT, "name": "cat", "type": "Regular"}, {"id": DOG, "name": "dog", "type": "Regular"},
        {"id": NEG, "name": "Negative", "type": "Negative"}]


def evaluation_record(image_id, truth, scores, fold, split="cv"):
    return {"image_id": image_id, "split": split, "fold": fold, "truth": {"tag_ids": truth, "regions": []},
            "predictions": [{"tag_id": t, "probability": p, "bounding_box": None}
                            for t, p in zip((CAT, DOG, NEG), scores)]}


def multiclass_evaluation():
    """Five out-of-fold images (2 folds) and two held-out images; the outcome at 0.5 is in the comments."""
    rec = evaluation_record
    return {"project_type": "Classification", "classification_type": "Multiclass", "k_folds": 2, "tags": TAGS,
            "records": [
                rec("i0", [CAT], [0.8, 0.1, 0.1], 0),     # TP cat
                rec("i1", [DOG], [0.6, 0.3, 0.1], 0),     # FP cat, FN dog
                rec("i2", [DOG], [0.2, 0.45, 0.35], 1),   # FN dog (argmax below 0.5)
                rec("i3", [NEG], [0.1, 0.2, 0.7], 1),     # Negative predicted: nothing
                rec("i4", [NEG], [0.1, 0.7, 0.2], 1),     # FP dog
                rec("h0", [CAT], [0.9, 0.05, 0.05], None, "holdout"),
                rec("h1", [DOG], [0.3, 0.6, 0.1], None, "holdout")]}


def detection_evaluation():
    """Two images: one with a cat and a dog box (duplicate and shifted predictions), one with a missed cat."""
    box = lambda l, t, w, h: {"left": l, "top": t, "width": w, "height": h}  # noqa: E731
    A, B = CAT, DOG
    recs = [
        {"image_id": "d0", "split": "cv", "fold": 0,
         "truth": {"tag_ids": [A, B], "regions": [{"tag_id": A, **box(.1, .1, .2, .2)},
                                                  {"tag_id": B, **box(.5, .5, .2, .2)}]},
         "predictions": [{"tag_id": A, "probability": 0.9, "bounding_box": box(.1, .1, .2, .2)},
                         {"tag_id": A, "probability": 0.8, "bounding_box": box(.1, .1, .2, .2)},
                         {"tag_id": B, "probability": 0.7, "bounding_box": box(.56, .5, .2, .2)},
                         {"tag_id": A, "probability": 0.6, "bounding_box": box(.5, .5, .2, .2)}]},
        {"image_id": "d1", "split": "cv", "fold": 0,
         "truth": {"tag_ids": [A], "regions": [{"tag_id": A, **box(0, 0, .5, .5)}]}, "predictions": []}]
    return {"project_type": "ObjectDetection", "classification_type": None, "k_folds": 1, "tags": TAGS[:2],
            "records": recs}


# ---- the REST service ------------------------------------------------------------------------------------------
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


class ServeProcess(_ServeProcess):
    """`cvlab serve --port 0 --no-rate-limit` in a subprocess, with an `Api` on it once it answers."""

    def __init__(self, ws_path, *extra: str, startup_timeout: float = 60):
        super().__init__(ws_path, "--no-rate-limit", *extra, startup_timeout=startup_timeout)
        self.api = Api(self.endpoint, self.training_key, self.prediction_key)
        # the server answers once the banner is out, but give uvicorn a moment to enter its loop
        for _ in range(100):
            try:
                if self.api.healthy():
                    break
            except requests.ConnectionError:
                time.sleep(0.05)

    def stop(self) -> str:
        return super().stop(timeout=20)


def container_client(app_dir: Path):
    """The exported app/app.py imported in this process (as `python app.py` would load it) -> Flask test client.

    app.py does `import predict` from its own folder; that name is removed again so two exported apps (or a test
    module) never share it."""
    saved_path, saved_predict = list(sys.path), sys.modules.pop("predict", None)
    sys.path.insert(0, str(app_dir))
    try:
        spec = importlib.util.spec_from_file_location(f"cvlab_container_{abs(hash(str(app_dir)))}", app_dir / "app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved_path
        sys.modules.pop("predict", None)
        if saved_predict is not None:
            sys.modules["predict"] = saved_predict
    module.predict.initialize()
    return module.app.test_client()


# ---- real browsers: Debian's Chromium driven by playwright (never `playwright install`) ---------------------------
CHROMIUM = os.environ.get("CVLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    """Debian's Chromium; without it browser tests skip, except under CI=true where they fail (CI installs it)."""
    import pytest

    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def wait_until(check, timeout: float, what: str, poll: float = 0.25):
    """``check()``'s first truthy value, polled until ``timeout`` seconds; an AssertionError naming ``what``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_for_idle_kernel(page, attempts: int = 3, timeout_ms: int = 60_000) -> None:
    """Wait until JupyterLab's status bar says the notebook's kernel is Idle, reloading the page when it stays
    "Unknown": on a fresh virtual environment the kernel's first status message can be lost while it is still
    compiling its imports, and JupyterLab then never asks again until the page reconnects."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    idle = page.get_by_text("Python 3 (ipykernel) | Idle")
    for attempt in range(attempts):
        try:
            idle.wait_for(timeout=timeout_ms)
            return
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise
            page.reload()


@contextlib.contextmanager
def jupyterlab(root: Path, **env_extra):
    """A real JupyterLab on 127.0.0.1 serving ``root`` (a free port, a token, its config, runtime and settings
    under ``root``, no news toast, no update check); yields ``(port, token)`` once it answers, stops it after."""
    import json
    import secrets
    import socket
    import subprocess
    import urllib.request

    config = root / "config"
    (config / "labconfig").mkdir(parents=True, exist_ok=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config), JUPYTER_TOKEN=token,
               JUPYTER_RUNTIME_DIR=str(root / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(root / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(root / "lab-workspaces"),
               PYTHONPATH=str(Path(__file__).resolve().parent.parent), **env_extra)
    log = open(root / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--LabApp.extension_manager=readonly",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)

    def up():
        assert server.poll() is None, f"JupyterLab exited; see {root / 'lab.log'}"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            return True
        except OSError:
            return False

    try:
        wait_until(up, 60, "JupyterLab to answer")
        yield port, token
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def run_cell(page, i: int, attempts: int = 3) -> None:
    """Click into cell i's editor (focus), Shift+Enter, and wait until it has an execution count.

    A request sent while a fresh kernel is still settling is sometimes never executed (the cell stays `[*]` while
    the kernel reports Idle); the cells here are idempotent, so such a lost request is simply sent again, after
    reloading the page: a fresh-clone CI run lost all three resends on one connection (the cell stayed `[*]`,
    kernel Idle), and a reload opens a new connection to the same kernel."""
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(i)
    prompt = cell.locator(".jp-InputPrompt").first
    ran = lambda: any(ch.isdigit() for ch in prompt.inner_text())  # noqa: E731
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            page.reload()
            wait_for_idle_kernel(page)
        cell.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        try:
            wait_until(ran, 45, f"cell {i} to run")
            return
        except AssertionError:
            busy = page.get_by_text("Python 3 (ipykernel) | Busy").count() > 0
            if attempt == attempts or busy and not ran():
                wait_until(ran, 60, f"cell {i} to run (attempt {attempt}, kernel busy={busy})")
                return

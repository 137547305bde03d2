"""Helpers shared by the portal tests: a real server on 127.0.0.1, Debian's Chromium driven by playwright, screenshots
under test-artifacts/portal/ (kept as CI artifacts), the SDK clients, and the boxes of Microsoft Learn's detection lab
photos. Without /usr/bin/chromium (or $CVLAB_CHROMIUM) the browser tests skip, except under CI=true where they fail."""
from __future__ import annotations

import contextlib
import functools
import http.server
import re
import threading
from pathlib import Path

from cvlab.mslearn import FRUIT, HAND_BOXES as FRUIT_BOXES  # the lab photos' boxes, one home
from helpers import CHROMIUM_ARGS, chromium_path  # noqa: F401 - the portal tests import them from here

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "portal"
VIEWPORT = {"width": 1280, "height": 800}

XSS = "<img src=x onerror=window.__xss=1>"


@contextlib.contextmanager
def browser_session():
    """A headless Chromium (Debian's) for one module."""
    from playwright.sync_api import sync_playwright
    path = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Portal:
    """One browser tab on the portal, with the page errors it logged and a screenshot helper."""

    def __init__(self, browser, handle, name: str, viewport=VIEWPORT, **context_args):
        self.handle = handle
        self.name = name
        self.context = browser.new_context(viewport=viewport, accept_downloads=True, **context_args)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}")
                     if m.type == "error" else None)
        self.shots = 0

    @property
    def url(self) -> str:
        return self.handle.endpoint + "/"

    def open(self, key: str | None = None, hash_: str = ""):
        self.page.goto(self.url + hash_)
        if key is not None:
            self.sign_in(key)
        return self.page

    def sign_in(self, key: str):
        page = self.page
        page.get_by_label("Training key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Projects Gallery").wait_for()

    def shot(self, label: str):
        """Save a screenshot as test-artifacts/portal/<test>-NN-<label>.png."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        safe = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        path = ARTIFACTS / f"{self.name}-{self.shots:02d}-{safe}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path

    def close(self):
        self.context.close()

    def assert_no_errors(self, allow=()):
        """No script error and no 5xx. (A 4xx is logged by Chromium too, but it is Azure's refusal of a request
        a test makes on purpose, shown to the learner.)"""
        allow = tuple(allow) + ("the server responded with a status of 4",)
        bad = [e for e in self.errors if not any(a in e for a in allow)]
        assert not bad, "the portal logged errors:\n" + "\n".join(bad)


def waits_on_429(client):
    """The SDK client, made to wait and retry when the key's rate limit answers 429 (any method, Retry-After).

    The portal paces itself at the tier's 10 calls per second and shares the training key with the test's own SDK
    calls, as on customvision.ai; on a quiet machine the two together pass the limit. msrest's retry policy means to
    retry POST but sets urllib3 1's ``method_whitelist``, which urllib3 2 ignores, and leaves 429 out."""
    policy = client.config.retry_policy.policy
    policy.allowed_methods = None  # every method
    policy.status_forcelist = set(policy.status_forcelist) | {429}
    policy.total = policy.status = 8
    return client


def sdk_trainer(handle):
    from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
    from msrest.authentication import ApiKeyCredentials
    return waits_on_429(CustomVisionTrainingClient(
        handle.endpoint, ApiKeyCredentials(in_headers={"Training-key": handle.training_key})))


def sdk_predictor(endpoint: str, key: str):
    from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
    from msrest.authentication import ApiKeyCredentials
    return waits_on_429(CustomVisionPredictionClient(endpoint, ApiKeyCredentials(in_headers={"Prediction-key": key})))


def drag_box(page, image, box, steps: int = 6):
    """Draw the normalised box (left, top, width, height) on the editor's image with a mouse drag."""
    r = image.bounding_box()
    left, top, width, height = box
    x0, y0 = r["x"] + left * r["width"], r["y"] + top * r["height"]
    x1, y1 = x0 + width * r["width"], y0 + height * r["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=steps)
    page.mouse.move(x1, y1, steps=steps)
    page.mouse.up()


def close_to(a, b, tol: float = 0.012) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


@contextlib.contextmanager
def file_server(folder: Path):
    """Serve `folder` on 127.0.0.1 (a stand-in for the labs' https://aka.ms/test-... image URLs)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def wait_iteration(trainer, project_id: str, iteration_id: str, timeout: float = 900):
    import time
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        it = trainer.get_iteration(project_id, iteration_id)
        if it.status not in ("Training", "Queued"):
            return it
        time.sleep(0.5)
    raise AssertionError(f"iteration {iteration_id} still training after {timeout:.0f} s")


def colours_project(ws, name: str = "colours", tags=("red", "blue"), per_tag: int = 6, mislabelled: int = 1,
                    untagged: int = 4, domain: str = "General (compact)", classification_type: str = "Multiclass"):
    """A small classification project of colour swatches: `per_tag` images per tag, `mislabelled` red swatches
    tagged with the second tag (so an iteration has mistakes to frame in red), `untagged` swatches of each colour
    left untagged (for the smart labeler). Returns {"project": Project, "tags": {name: id}, "mislabelled": [ids]}."""
    from cvlab.datasets.swatches import swatch_jpeg
    from cvlab.domains import find_domain
    from cvlab.workspace import ImageEntry
    colours = [(200, 30, 30), (30, 40, 200), (30, 170, 60), (220, 200, 30)]
    p = ws.create_project(name, domain_id=find_domain(domain, "Classification").id,
                          classification_type=classification_type)
    ids = {t: ws.create_tag(p.id, t).id for t in tags}
    entries, seed = [], 0
    for k, t in enumerate(tags):
        for _ in range(per_tag):
            seed += 1
            entries.append(ImageEntry(swatch_jpeg(colours[k], seed), f"{t}{seed}.jpg", [ids[t]]))
    wrong = [ImageEntry(swatch_jpeg(colours[0], 1000 + i), f"wrong{i}.jpg", [ids[tags[1]]]) for i in range(mislabelled)]
    loose = [ImageEntry(swatch_jpeg(colours[k % len(tags)], 2000 + k), f"loose{k}.jpg")
             for k in range(untagged * len(tags))]
    if entries:
        ws.create_images(p.id, entries)
    created = ws.create_images(p.id, wrong).images if wrong else []
    if loose:
        ws.create_images(p.id, loose)
    return {"project": p, "tags": ids, "mislabelled": [r.image.id for r in created]}

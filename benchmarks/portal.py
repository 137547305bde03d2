"""First paint and navigation times of the portal's screens for a 5,000-image project, in headless Chromium against
``cvlab serve`` in its own process; prints one JSON object. Goal (issue 20): under 1 s each on 2 cores.

    .venv/bin/python benchmarks/portal.py [--images 5000] [--repeats 5] [--workspace DIR]

The project holds ``--images`` 640x480 JPEGs (Microsoft Learn's fruit photos, each a different crop), 80 % tagged
(apple / banana / orange) and 20 % untagged, one Quick iteration (General (compact)) and 100 stored predictions.
Building it takes minutes (training embeds every tagged image); ``--workspace DIR`` keeps and reuses it.

Each figure is the median of ``--repeats`` runs, in milliseconds:
- ``first_paint``: a fresh page load of the screen (the training key already in the tab's sessionStorage) until its
  content is on screen: the 60 thumbnails' tiles and the counts, the gauges, the prediction tiles, the tiles of
  the gallery, the settings form; ``training_images_thumbnails``: until the thumbnails in the window have loaded
  too (``..._all_60_thumbnails``: the whole page of 60, most of them below the fold);
- ``navigation``: an in-portal move until its content is on screen: tab to tab, the next page of thumbnails,
  opening Image Detail and its next image, opening Quick Test.
The server runs with ``--no-rate-limit``: the portal paces itself under Azure's 10 calls/s, but a benchmark that
reloads a screen many times a second would otherwise wait on the gateway's 429s, which no learner meets. The
machine is shared: the load average is printed with the figures.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cvlab.service.process import ServeProcess  # noqa: E402

CHROMIUM = os.environ.get("CVLAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
FRUIT = ROOT / "data" / "mslearn-fruit" / "classification" / "training-images"
PAGE = 60  # thumbnails per page (cvlab/portal/static/js/training-images.js PAGE_SIZE)


def build(ws_path: Path, count: int) -> str:
    """The benchmark project (reused when the workspace already holds it); returns its id."""
    from PIL import Image
    import cvlab
    from cvlab.domains import find_domain
    from cvlab.predict import Predictor
    from cvlab.training import train_project
    from cvlab.workspace import ImageEntry
    ws = cvlab.Workspace(ws_path)
    found = ws.find_project("bench-5000")
    if found and ws.get_image_count(found.id) == count and ws.get_iterations(found.id):
        ws.close()
        return found.id
    if found:
        ws.delete_project(found.id)
    p = ws.create_project("bench-5000", domain_id=find_domain("General (compact)").id,
                          classification_type="Multiclass")
    tags = {t: ws.create_tag(p.id, t).id for t in ("apple", "banana", "orange")}
    photos = [(t, Image.open(f).convert("RGB")) for t in tags for f in sorted((FRUIT / t).glob("*.jpg"))]
    rng = random.Random(0)
    batch = []
    for i in range(count):
        tag, im = photos[i % len(photos)]
        w, h = im.size
        x, y = rng.randint(0, w // 5), rng.randint(0, h // 5)
        crop = im.crop((x, y, x + w * 4 // 5, y + h * 4 // 5)).resize((640, 480))
        crop.putpixel((i % 640, i // 640), (i % 256, 255 - i % 256, 0))  # every image differs (no duplicates)
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=85)
        batch.append(ImageEntry(buf.getvalue(), f"img{i:05d}.jpg", [tags[tag]] if i % 5 else []))
        if len(batch) == 64:
            ws.create_images(p.id, batch)
            batch = []
    if batch:
        ws.create_images(p.id, batch)
    it = train_project(ws, p.id, show_progress=False)
    predictor = Predictor.load(ws, it.id)
    for im in ws.get_images(p.id, tagging_status="Untagged", take=100):
        data = ws.read_image_bytes(im)
        ws.store_prediction(p.id, it.id, data, predictor.predict(data))
    ws.close()
    return p.id


READY = {  # what "on screen" means for each screen
    "images": f"() => document.querySelectorAll('.grid .thumb').length === {PAGE} && "
              "!document.body.textContent.includes('…')",
    "thumbnails": f"() => {{ const i = [...document.querySelectorAll('.grid .thumb img')]; return i.length === {PAGE}"
                  " && i.filter((x) => x.getBoundingClientRect().top < innerHeight)"
                  ".every((x) => x.complete && x.naturalWidth > 0); }",
    "all_thumbnails": f"() => {{ const i = [...document.querySelectorAll('.grid .thumb img')]; return i.length === {PAGE}"
                      " && i.every((x) => x.complete && x.naturalWidth > 0); }",
    "performance": "() => document.querySelectorAll('.gauge').length >= 3 && document.querySelector('table.per-tag')",
    "predictions": "() => document.querySelectorAll('.grid .thumb').length > 0",
    "gallery": "() => document.querySelectorAll('.tiles a.tile').length > 0",
    "settings": "() => document.querySelector('#ps-name') && document.querySelector('#ps-name').value",
    "detail": "() => { const i = document.querySelector('.detail-img'); return i && i.complete && i.naturalWidth > 0; }",
    "quicktest": "() => document.querySelector('#qt-url')",
}


def run(args) -> dict:
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory(prefix="cvlab-portal-bench-") as tmp:
        ws_path = Path(args.workspace) if args.workspace else Path(tmp) / "ws"
        t0 = time.perf_counter()
        pid = build(ws_path, args.images)
        built_s = time.perf_counter() - t0
        with ServeProcess(ws_path, "--no-rate-limit") as server, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.add_init_script(f"sessionStorage.setItem('cvlab.portal.trainingKey', {json.dumps(server.training_key)});"
                                    f"sessionStorage.setItem('cvlab.portal.predictionKey', {json.dumps(server.prediction_key)});")
            page = context.new_page()
            base = server.endpoint + "/#/"

            def load(hash_, ready):
                """A fresh page load: ms from the navigation's start until `ready` holds."""
                page.goto("about:blank")
                page.goto(base + hash_)
                page.wait_for_function(READY[ready], timeout=60_000, polling="raf")
                return page.evaluate("() => performance.now()")

            def move(action, ready):
                """An in-portal move: ms from the click until `ready` holds."""
                page.evaluate("() => { window.__t0 = performance.now(); }")
                action()
                page.wait_for_function(READY[ready], timeout=60_000, polling="raf")
                return page.evaluate("() => performance.now() - window.__t0")

            first, nav = {}, {}
            for _ in range(args.repeats):
                for name, hash_, ready in (("gallery", "", "gallery"),
                                           ("training_images", f"projects/{pid}/images", "images"),
                                           ("training_images_thumbnails", f"projects/{pid}/images", "thumbnails"),
                                           ("training_images_all_60_thumbnails", f"projects/{pid}/images",
                                            "all_thumbnails"),
                                           ("untagged", f"projects/{pid}/images?status=untagged", "images"),
                                           ("performance", f"projects/{pid}/performance", "performance"),
                                           ("predictions", f"projects/{pid}/predictions", "predictions"),
                                           ("project_settings", f"projects/{pid}/settings", "settings")):
                    first.setdefault(name, []).append(load(hash_, ready))
                load(f"projects/{pid}/images", "thumbnails")
                nav.setdefault("next_page", []).append(move(
                    lambda: page.get_by_role("button", name="Next page").click(), "images"))
                nav.setdefault("tab_performance", []).append(move(
                    lambda: page.get_by_role("link", name="Performance").click(), "performance"))
                nav.setdefault("tab_predictions", []).append(move(
                    lambda: page.get_by_role("link", name="Predictions").click(), "predictions"))
                nav.setdefault("tab_training_images", []).append(move(
                    lambda: page.get_by_role("link", name="Training Images").click(), "images"))
                nav.setdefault("open_image_detail", []).append(move(
                    lambda: page.locator(".grid .thumb-button").first.click(), "detail"))
                before = page.locator(".detail-img").get_attribute("src")
                page.evaluate("() => { window.__t0 = performance.now(); }")
                page.get_by_role("button", name="Next image").click()
                page.wait_for_function("(b) => { const i = document.querySelector('.detail-img');"
                                       " return i && i.getAttribute('src') !== b && i.complete && i.naturalWidth > 0; }",
                                       arg=before, polling="raf")
                nav.setdefault("next_image", []).append(page.evaluate("() => performance.now() - window.__t0"))
                page.get_by_role("dialog", name="Image Detail").get_by_role("button", name="Done").click()
                nav.setdefault("open_quick_test", []).append(move(
                    lambda: page.get_by_role("button", name="Quick Test").click(), "quicktest"))
                page.get_by_role("dialog", name="Quick Test").get_by_role("button", name="Close").click()
                nav.setdefault("gallery", []).append(move(
                    lambda: page.get_by_role("link", name="Projects Gallery").click(), "gallery"))
            browser.close()

    def med(d):
        return {k: round(statistics.median(v)) for k, v in d.items()}
    out = {"images": args.images, "repeats": args.repeats, "build_s": round(built_s, 1),
           "first_paint_ms": med(first), "navigation_ms": med(nav)}
    worst = max(list(out["first_paint_ms"].values()) + list(out["navigation_ms"].values()))
    out["worst_ms"] = worst
    out["goal_ms"] = 1000
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workspace", default=None, help="keep the benchmark workspace here (reused next time)")
    print(json.dumps(run(parser.parse_args()), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The labeling widgets in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium driven by playwright.

Runs two notebook cells (tagger, box labeler), clicks a tag button, uses a key shortcut, drags a box on the
box labeler's picture and picks its tag, then reads the workspace from Python: the tags and a region where the box was drawn.
Screenshots are saved on failure (the path is printed). Without /usr/bin/chromium (or $CVLAB_CHROMIUM) the
test skips, except under CI=true where it fails.
"""
from __future__ import annotations

import re
import shutil
import time

import nbformat
import pytest

from cvlab.domains import find_domain
from cvlab.workspace import Workspace

from helpers import (CHROMIUM_ARGS, chromium_path, jupyterlab, make_image_bytes, run_cell, wait_for_idle_kernel,
                     wait_until)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
CELLS = [
    "import cvlab\nws = cvlab.open_workspace()\nt = ws.find_project('parts').tagger()\nt",
    "b = ws.find_project('site').box_labeler()\nb",
]
IMAGE_SIZE = (300, 200)  # the box labeler's picture; shown at its natural size or scaled, the test measures it


@pytest.fixture(scope="module")
def chromium():
    return chromium_path()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A workspace with a classification and a detection project, and JupyterLab serving a notebook on it."""
    root = tmp_path_factory.mktemp("lab")
    ws = Workspace(root / "ws")
    parts = ws.create_project("parts", classification_type="Multiclass")
    for name in ("bolt", "gear"):
        ws.create_tag(parts.id, name)
    for i in range(3):
        ws.add_images(parts.id, [make_image_bytes(96, 64, seed=i)])
    site = ws.create_project("site", domain_id=find_domain("General (compact)", "ObjectDetection").id)
    for name in ("helmet", "vest"):
        ws.create_tag(site.id, name)
    ws.add_images(site.id, [make_image_bytes(*IMAGE_SIZE, color=(200, 220, 240))])
    ids = dict(parts=parts.id, site=site.id,
               parts_images=[im.id for im in ws.get_images(parts.id, order_by="Oldest")])
    ws.close()

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "label.ipynb")
    with jupyterlab(root, CVLAB_WORKSPACE=str(root / "ws")) as (port, token):
        yield dict(root=root, url=f"http://127.0.0.1:{port}/lab/tree/label.ipynb?token={token}", **ids)


def test_label_in_a_real_browser(chromium, lab, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = lab["root"] / "screenshots"
    shots.mkdir(exist_ok=True)
    page = None
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=chromium, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1400})
        try:
            page = context.new_page()
            page.goto(lab["url"])
            wait_for_idle_kernel(page)  # first kernel start

            # -- tagger: a tag button, then a key shortcut ---------------------------------------------------
            run_cell(page, 0)
            tagger = page.locator(".cvlab-tagger")
            tagger.wait_for(timeout=30_000)
            tagger.get_by_role("button", name="1 bolt").click()
            tagger.get_by_text("image 2 of 3").wait_for(timeout=15_000)  # multiclass: moved on to image 2
            tagger.locator(".cvlab-keys").click()
            page.keyboard.press("2")
            tagger.get_by_text("image 3 of 3").wait_for(timeout=15_000)

            # -- box labeler: drag a box on the picture, then pick "vest" in its tag list ----------------------
            run_cell(page, 1)
            labeler = page.locator(".cvlab-box-labeler")
            labeler.wait_for(timeout=30_000)
            img = labeler.locator("img.cvr-img")
            img.wait_for(timeout=15_000)
            img.scroll_into_view_if_needed()
            wait_until(lambda: (img.bounding_box() or {}).get("width", 0) > 10, 15, "the picture to load")
            box = img.bounding_box()
            x0, y0, x1, y1 = 0.2, 0.25, 0.7, 0.8  # fractions of the shown picture
            page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
            page.mouse.down()
            page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=10)
            page.mouse.up()
            labeler.get_by_role("option", name=re.compile("^vest")).click()
            labeler.get_by_text("Box added: 1 box saved").wait_for(timeout=15_000)
        except Exception:
            if page is not None:
                path = shots / f"failure-{int(time.time())}.png"
                page.screenshot(path=str(path), full_page=True)
                print(f"screenshot: {path}  (JupyterLab log: {lab['root'] / 'lab.log'})")
            raise
        finally:
            context.close()

    # -- what the workspace holds, read from Python ---------------------------------------------------------
    ws = Workspace(lab["root"] / "ws")
    try:
        first, second, third = lab["parts_images"]
        assert [t.tag_name for t in ws.get_image(lab["parts"], first).tags] == ["bolt"]
        assert [t.tag_name for t in ws.get_image(lab["parts"], second).tags] == ["gear"]
        assert ws.get_image(lab["parts"], third).tags == []
        (image,) = ws.get_images(lab["site"])
        (region,) = image.regions
        assert region.tag_name == "vest"
        w, h = IMAGE_SIZE
        tolerance = 3  # pixels of the image
        assert abs(region.left * w - x0 * w) <= tolerance and abs(region.top * h - y0 * h) <= tolerance
        assert abs(region.width * w - (x1 - x0) * w) <= tolerance
        assert abs(region.height * h - (y1 - y0) * h) <= tolerance
    finally:
        ws.close()
    shutil.rmtree(shots, ignore_errors=True)

"""Labeling in a real browser (issue 18, deliverable 5): JupyterLab on 127.0.0.1, Debian's Chromium driven by
playwright, every action checked in the workspace's database afterwards.

- the tagger's grid view: tick 5 thumbnails, pick a tag, Apply;
- the box labeler: draw a person, draw a helmet inside it (the drag draws, it does not move the person), undo;
- the box labeler's dashed suggestions from the latest iteration: click one to accept it;

Screenshots of failures are kept under the test's tmp folder (the path is printed). Without /usr/bin/chromium
(or $CVLAB_CHROMIUM) the tests skip, except under CI=true where they fail.
"""
from __future__ import annotations

import io
import time

import nbformat
import pytest

from cvlab.workspace import Workspace
from helpers import CHROMIUM_ARGS, chromium_path, jupyterlab, run_cell, wait_for_idle_kernel, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def chromium():
    return chromium_path()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving the folder `root` (notebooks are written there by each test) on workspace root/ws."""
    root = tmp_path_factory.mktemp("labeling")
    Workspace(root / "ws").close()
    with jupyterlab(root, CVLAB_WORKSPACE=str(root / "ws")) as (port, token):
        # ?reset: JupyterLab opens only this notebook, not the tabs an earlier test left (their kernels' "Idle"
        # would satisfy the wait for this one's)
        yield dict(root=root, ws=root / "ws",
                   url=lambda name: f"http://127.0.0.1:{port}/lab/tree/{name}?reset&token={token}")


def notebook(lab, name: str, cells: list[str]) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, lab["root"] / name)
    return lab["url"](name)


class Browser:
    """One Chromium page on a notebook, with a screenshot kept if the block fails."""

    def __init__(self, chromium, lab, tmp_path, url):
        self.chromium, self.lab, self.tmp, self.url = chromium, lab, tmp_path, url

    def __enter__(self):
        from playwright.sync_api import sync_playwright

        self._p = sync_playwright().start()
        self.context = self._p.chromium.launch_persistent_context(
            str(self.tmp / "chromium-profile"), executable_path=self.chromium, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1400})
        self.page = self.context.new_page()
        self.page.goto(self.url)
        wait_for_idle_kernel(self.page)
        return self.page

    def __exit__(self, kind, exc, tb):
        try:
            if kind is not None:
                path = self.tmp / f"failure-{int(time.time())}.png"
                self.page.screenshot(path=str(path), full_page=True)
                print(f"screenshot: {path}  (JupyterLab log: {self.lab['root'] / 'lab.log'})")
        finally:
            self.context.close()
            self._p.stop()


def test_grid_tags_five_images_in_the_browser(chromium, lab, tmp_path):
    from PIL import Image

    ws = Workspace(lab["ws"])
    p = ws.create_project("grid", classification_type="Multiclass")
    for name in ("bolt", "gear"):
        ws.create_tag(p.id, name)
    for i in range(8):
        buf = io.BytesIO()
        Image.new("RGB", (60, 40), (30 * i, 100, 200 - 20 * i)).save(buf, "JPEG")
        ws.add_images(p.id, [buf.getvalue()])
    order = [im.id for im in ws.get_images(p.id, order_by="Oldest")]
    ws.close()
    url = notebook(lab, "grid.ipynb", ["import cvlab\nws = cvlab.open_workspace()\n"
                                       "t = ws.find_project('grid').tagger(view='Grid')\nt"])
    with Browser(chromium, lab, tmp_path, url) as page:
        run_cell(page, 0)
        tagger = page.locator(".cvlab-tagger")
        tagger.wait_for(timeout=30_000)
        for n in (1, 2, 3, 5, 8):
            tagger.get_by_role("button", name=f"{n}: untagged").click()
        tagger.get_by_role("button", name="Apply to 5 selected").wait_for(timeout=15_000)
        tagger.locator(".widget-dropdown select").select_option("gear")  # the grid's Tag list
        tagger.get_by_role("button", name="Apply to 5 selected").click()
        tagger.get_by_text("Tagged 5 images gear").wait_for(timeout=15_000)

    ws = Workspace(lab["ws"])
    try:
        tags = {im.id: [t.tag_name for t in im.tags] for im in ws.get_images(p.id, take=50)}
        assert [tags[order[n - 1]] for n in (1, 2, 3, 5, 8)] == [["gear"]] * 5
        assert [tags[order[n - 1]] for n in (4, 6, 7)] == [[]] * 3
    finally:
        ws.close()


def _scene_project(ws, name: str, size=(400, 300)):
    from cvlab.domains import find_domain

    p = ws.create_project(name, domain_id=find_domain("General (compact)", "ObjectDetection").id)
    for tag in ("person", "helmet"):
        ws.create_tag(p.id, tag)
    buf = io.BytesIO()
    from PIL import Image

    Image.new("RGB", size, (200, 220, 240)).save(buf, "JPEG")
    ws.add_images(p.id, [buf.getvalue()])
    return p


def _drag(page, img, x0, y0, x1, y1):
    """A mouse drag between two points given as fractions of the shown picture."""
    box = img.bounding_box()
    page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=12)
    page.mouse.up()


def _regions(path, project_id):
    ws = Workspace(path)
    try:
        (image,) = ws.get_images(project_id)
        return sorted(((r.tag_name, round(r.left, 3), round(r.top, 3), round(r.width, 3), round(r.height, 3))
                       for r in image.regions), key=lambda r: -r[3] * r[4])
    finally:
        ws.close()


def test_draw_a_box_inside_another_then_undo_it(chromium, lab, tmp_path):
    import re

    ws = Workspace(lab["ws"])
    p = _scene_project(ws, "nested")
    ws.close()
    url = notebook(lab, "nested.ipynb", ["import cvlab\nws = cvlab.open_workspace()\n"
                                         "b = ws.find_project('nested').box_labeler()\nb"])
    with Browser(chromium, lab, tmp_path, url) as page:
        run_cell(page, 0)
        labeler = page.locator(".cvlab-box-labeler")
        labeler.wait_for(timeout=30_000)
        img = labeler.locator("img.cvr-img")
        wait_until(lambda: (img.bounding_box() or {}).get("width", 0) > 50, 20, "the picture to load")
        img.scroll_into_view_if_needed()
        _drag(page, img, 0.10, 0.10, 0.70, 0.90)                               # the person
        labeler.get_by_role("option", name=re.compile("^person")).click()
        labeler.get_by_text("Box added: 1 box saved").wait_for(timeout=15_000)
        _drag(page, img, 0.30, 0.15, 0.45, 0.32)                               # a helmet inside the person
        labeler.get_by_role("option", name=re.compile("^helmet")).click()
        labeler.get_by_text("Box added: 2 boxes saved").wait_for(timeout=15_000)
        nested = _regions(lab["ws"], p.id)
        assert [r[0] for r in nested] == ["person", "helmet"]
        (_, pl, pt, pw, ph), (_, hl, ht, hw, hh) = nested
        assert pl <= hl and pt <= ht and hl + hw <= pl + pw and ht + hh <= pt + ph   # the helmet lies inside
        assert abs(hl - 0.30) < 0.02 and abs(ht - 0.15) < 0.02 and abs(pw - 0.60) < 0.02
        labeler.get_by_role("button", name="Undo").click()
        labeler.get_by_text("Undone: 1 box saved").wait_for(timeout=15_000)
    assert [r[0] for r in _regions(lab["ws"], p.id)] == ["person"]               # the helmet is gone, the person kept


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_accept_a_suggestion_from_the_latest_iteration(chromium, lab, tmp_path):
    from cvlab import datasets
    from cvlab.datasets.importing import import_records
    from cvlab.domains import find_domain
    from cvlab.training import train_project
    from cvlab.workspace import ImageEntry

    ws = Workspace(lab["ws"])
    p = ws.create_project("suggest", domain_id=find_domain("General (compact)", "ObjectDetection").id)
    assert not import_records(ws, p.id, datasets.generate("site", 26, seed=3, size=160)).failed
    it = train_project(ws, p.id, seed=1, detection_epochs=3, show_progress=False)
    assert it.status == "Completed", it.training_error_details
    fresh = datasets.generate("site", 1, seed=77, size=160)[0]
    buf = io.BytesIO()
    fresh.load().save(buf, "JPEG")
    new = ws.create_images(p.id, [ImageEntry(data=buf.getvalue(), name="fresh.jpg")]).images[0].image
    ws.close()
    url = notebook(lab, "suggest.ipynb", ["import cvlab\nws = cvlab.open_workspace()\n"
                                          "b = ws.find_project('suggest').box_labeler(threshold=0.05)\nb"])
    with Browser(chromium, lab, tmp_path, url) as page:
        run_cell(page, 0)
        labeler = page.locator(".cvlab-box-labeler")
        labeler.wait_for(timeout=60_000)
        shown = labeler.locator(".cvr-suggestion.cvr-shown")
        wait_until(lambda: shown.count() > 0, 30, "dashed suggestions to show")
        target = shown.last                                                    # drawn last: on top
        box = target.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        labeler.get_by_text("Suggestion accepted: 1 box saved").wait_for(timeout=15_000)
    ws = Workspace(lab["ws"])
    try:
        regions = ws.get_image(p.id, new.id).regions
        assert len(regions) == 1 and regions[0].tag_name in {"person", "helmet", "vest"}
    finally:
        ws.close()

"""The detection-region editor (cvlab/portal/static/js/regions.js) on its own, in headless Chromium: the module the
portal's Image Detail and, later, the notebook box labeler share. Mouse drags draw (also inside another region),
moving and resizing need the region selected first, keys and undo/redo work, suggestions are accepted or rejected,
and what comes out is Azure's normalised left/top/width/height."""
from __future__ import annotations

import pytest

import cvlab
from cvlab.service.server import start_background

from test_portal_support import ROOT, XSS, browser_session, close_to, drag_box

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

SETUP = """async ({tags, suggestions, mode}) => {
  const { createRegionEditor } = await import('/portal/js/regions.js');
  document.body.replaceChildren();
  const host = document.createElement('div');
  host.style.width = '640px';
  document.body.append(host);
  const canvas = document.createElement('canvas');
  canvas.width = 800; canvas.height = 600;
  const g = canvas.getContext('2d'); g.fillStyle = '#8aa'; g.fillRect(0, 0, 800, 600);
  const blob = await new Promise((r) => canvas.toBlob(r));
  window.changes = [];
  let n = tags.length;
  window.ed = createRegionEditor(host, { src: URL.createObjectURL(blob), tags, suggestions, suggestionMode: mode,
    onChange: (regions, info) => window.changes.push(info.reason),
    createTag: async (name) => ({ id: 't' + (++n), name }) });
  await new Promise((r) => { const i = host.querySelector('img'); if (i.complete) r(); else i.onload = r; });
}"""


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    ws = cvlab.Workspace(tmp_path_factory.mktemp("regions") / "ws")
    with start_background(ws) as handle, browser_session() as browser:
        context = browser.new_context(viewport={"width": 1000, "height": 800})
        p = context.new_page()
        errors = []
        p.on("pageerror", lambda e: errors.append(str(e)))
        p.goto(handle.endpoint + "/portal/vendor/README.md")  # any page of the portal's origin (and its CSP)
        yield p
        assert not errors, errors
        context.close()
    ws.close()


def setup(page, tags=(("t1", "apple"), ("t2", "banana")), suggestions=(), mode="hover"):
    page.evaluate(SETUP, {"tags": [{"id": i, "name": n} for i, n in tags], "suggestions": list(suggestions),
                          "mode": mode})
    return page.locator(".cvr-img")


def regions(page):
    return page.evaluate("() => window.ed.getRegions()")


def boxes(page):
    return [(r["tagName"], r["left"], r["top"], r["width"], r["height"]) for r in regions(page)]


def tag_it(page, name):
    page.get_by_label("Tag name").fill(name)
    page.get_by_label("Tag name").press("Enter")


def click_at(page, image, x, y):
    r = image.bounding_box()
    page.mouse.click(r["x"] + x * r["width"], r["y"] + y * r["height"])


def test_the_module_is_self_contained():
    text = (ROOT / "cvlab" / "portal" / "static" / "js" / "regions.js").read_text()
    assert "import " not in text.split("*/")[-1] and "from '" not in text
    assert "export function createRegionEditor" in text


def test_drag_draws_a_region_and_the_tag_list_names_it(page):
    image = setup(page)
    drag_box(page, image, (0.1, 0.2, 0.3, 0.4))
    assert regions(page)[0]["tagId"] is None  # drawn, waiting for its tag
    tag_it(page, "banana")
    (name, *box), = boxes(page)
    assert name == "banana" and close_to(box, (0.1, 0.2, 0.3, 0.4), 0.005)
    drag_box(page, image, (0.5, 0.5, 0.2, 0.2))
    tag_it(page, "cherry")  # a new tag, made with createTag
    assert [r["tagName"] for r in regions(page)] == ["banana", "cherry"]
    assert regions(page)[1]["tagId"] == "t3"
    assert page.evaluate("() => window.changes") == ["draw", "draw"]


def test_a_region_can_be_drawn_inside_another_and_nothing_moves_by_accident(page):
    image = setup(page)
    drag_box(page, image, (0.1, 0.1, 0.8, 0.8))
    tag_it(page, "apple")
    drag_box(page, image, (0.3, 0.3, 0.2, 0.2))  # starts inside the big region: draws, does not move it
    tag_it(page, "banana")
    got = sorted(boxes(page))
    assert got[0][0] == "apple" and close_to(got[0][1:], (0.1, 0.1, 0.8, 0.8), 0.005)
    assert got[1][0] == "banana" and close_to(got[1][1:], (0.3, 0.3, 0.2, 0.2), 0.005)


def test_move_and_resize_need_the_region_selected(page):
    image = setup(page)
    drag_box(page, image, (0.2, 0.2, 0.2, 0.2))
    tag_it(page, "apple")
    click_at(page, image, 0.3, 0.3)  # select it (a click, not a drag)
    assert page.locator(".cvr-selected").count() == 1
    r = image.bounding_box()
    page.mouse.move(r["x"] + 0.3 * r["width"], r["y"] + 0.3 * r["height"])
    page.mouse.down()
    page.mouse.move(r["x"] + 0.5 * r["width"], r["y"] + 0.4 * r["height"], steps=5)
    page.mouse.up()
    (_, *box), = boxes(page)
    assert close_to(box, (0.4, 0.3, 0.2, 0.2), 0.005)
    handle = page.locator(".cvr-handle[data-edge=se]").bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(r["x"] + 0.8 * r["width"], r["y"] + 0.9 * r["height"], steps=5)
    page.mouse.up()
    (_, *box), = boxes(page)
    assert close_to(box, (0.4, 0.3, 0.4, 0.6), 0.005)
    assert page.evaluate("() => window.changes") == ["draw", "move", "resize"]
    assert regions(page)[0]["id"] is None  # changed geometry: the host saves it anew


def test_undo_redo_and_keys(page):
    image = setup(page)
    drag_box(page, image, (0.1, 0.1, 0.2, 0.2))
    tag_it(page, "apple")
    drag_box(page, image, (0.5, 0.5, 0.2, 0.2))
    tag_it(page, "apple")
    root = page.locator(".cvr")
    root.focus()
    root.press("Control+z")
    assert len(regions(page)) == 1
    root.press("Control+Shift+z")
    assert len(regions(page)) == 2
    root.press("]")  # select the first region
    root.press("2")  # its tag becomes the second tag
    assert regions(page)[0]["tagName"] == "banana"
    root.press("ArrowRight")
    assert close_to((regions(page)[0]["left"],), (0.11,), 0.001)
    root.press("Alt+ArrowDown")
    assert close_to((regions(page)[0]["height"],), (0.21,), 0.001)
    root.press("Delete")
    assert [r["tagName"] for r in regions(page)] == ["apple"]
    root.press("Control+z")
    root.press("Control+y")
    assert len(regions(page)) == 1
    root.press("Control+z")
    assert len(regions(page)) == 2
    assert page.evaluate("() => window.changes") == ["draw", "draw", "undo", "redo", "tag", "move", "resize",
                                                      "delete", "undo", "redo", "undo"]


def test_escape_drops_a_region_that_was_never_tagged(page):
    image = setup(page)
    drag_box(page, image, (0.1, 0.1, 0.2, 0.2))
    page.get_by_label("Tag name").press("Escape")
    assert regions(page) == [] and page.evaluate("() => window.changes") == []


def test_suggestions_show_on_hover_and_are_accepted_or_rejected(page):
    image = setup(page, suggestions=[{"left": 0.1, "top": 0.1, "width": 0.3, "height": 0.3, "probability": 0.9},
                                     {"left": 0.6, "top": 0.6, "width": 0.3, "height": 0.3, "probability": 0.8}])
    assert page.locator(".cvr-suggestion.cvr-shown").count() == 0
    r = image.bounding_box()
    page.mouse.move(r["x"] + 0.2 * r["width"], r["y"] + 0.2 * r["height"])
    page.locator(".cvr-suggestion.cvr-shown").wait_for()
    page.mouse.click(r["x"] + 0.2 * r["width"], r["y"] + 0.2 * r["height"])  # accept: pick its tag
    tag_it(page, "apple")
    (name, *box), = boxes(page)
    assert name == "apple" and close_to(box, (0.1, 0.1, 0.3, 0.3), 1e-6)
    page.mouse.move(r["x"] + 0.75 * r["width"], r["y"] + 0.75 * r["height"])
    page.get_by_role("button", name="Reject suggested region").wait_for()
    page.get_by_role("button", name="Reject suggested region").click()
    assert page.locator(".cvr-suggestion").count() == 0 and len(regions(page)) == 1


def test_tagged_suggestions_are_accepted_all_at_once(page):
    setup(page, mode="always", suggestions=[
        {"left": 0.1, "top": 0.1, "width": 0.2, "height": 0.2, "tagId": "t1", "tagName": "apple", "probability": 0.9},
        {"left": 0.5, "top": 0.5, "width": 0.2, "height": 0.2, "tagId": "t2", "tagName": "banana", "probability": 0.7}])
    assert page.locator(".cvr-suggestion.cvr-shown").count() == 2
    page.evaluate("() => window.ed.acceptAllSuggestions()")
    assert sorted(r["tagName"] for r in regions(page)) == ["apple", "banana"]
    page.locator(".cvr").focus()
    page.locator(".cvr").press("Control+z")
    assert regions(page) == []


def test_tag_names_are_text_never_html(page):
    image = setup(page, tags=(("t1", XSS),))
    drag_box(page, image, (0.1, 0.1, 0.3, 0.3))
    page.locator(".cvr-picker li button").first.click()
    assert page.locator(".cvr-label").first.inner_text() == XSS
    assert page.locator(".cvr img[src=x]").count() == 0 and page.evaluate("() => window.__xss") is None

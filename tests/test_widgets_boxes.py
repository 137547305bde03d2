"""The box labeler's Python side (the region editor runs in the browser: tests/test_browser_labeling.py drags
there): what each message from the editor saves, navigation, the project's tags as its only classes, tag
creation, suggestions from the latest iteration and their acceptance or rejection."""
from __future__ import annotations

import pytest

from cvlab.domains import find_domain
from cvlab.errors import CvlabError
from cvlab.widgets import BoxLabeler, box_labeler
from cvlab.workspace import ImageEntry, Workspace

from helpers import make_image_bytes


def _detection(ws, n=2, size=(200, 100)):
    p = ws.create_project("site", domain_id=find_domain("General (compact)", "ObjectDetection").id)
    for t in ("helmet", "person"):
        ws.create_tag(p.id, t)
    for i in range(n):
        ws.add_images(p.id, [make_image_bytes(*size, seed=10 + i)])
    return ws.get_project(p.id)


def _send(bl, **msg):
    bl._on_message(bl, msg, [])


def _tag(ws, p, name):
    return next(t.id for t in ws.get_tags(p.id) if t.name == name)


def test_each_change_is_saved_and_a_box_may_lie_inside_another(ws):
    p = _detection(ws)
    bl = box_labeler(p)
    assert isinstance(bl, BoxLabeler) and [t["name"] for t in bl.tags] == ["helmet", "person"]  # tags only
    assert bl.image["src"].startswith("data:image/jpeg;base64,") and bl.regions == []
    person = {"tag_id": _tag(ws, p, "person"), "left": 0.1, "top": 0.1, "width": 0.5, "height": 0.8}
    helmet = {"tag_id": _tag(ws, p, "helmet"), "left": 0.2, "top": 0.12, "width": 0.1, "height": 0.1}
    _send(bl, kind="change", reason="draw", regions=[person])
    _send(bl, kind="change", reason="draw", regions=[person, helmet])           # drawn inside the person
    saved = sorted(ws.get_image(p.id, bl.image_id).regions, key=lambda r: r.width)
    assert [r.tag_name for r in saved] == ["helmet", "person"]
    assert (saved[0].left, saved[0].top) == pytest.approx((0.2, 0.12))
    assert "Box added: 2 boxes saved" in bl.status["text"] and bl.position["labelled"] == 1
    _send(bl, kind="change", reason="undo", regions=[person])                  # the editor's undo
    assert [r.tag_name for r in ws.get_image(p.id, bl.image_id).regions] == ["person"]
    assert "Undone" in bl.status["text"]


def test_navigation_shows_saved_boxes_and_unlabelled_first(ws):
    p = _detection(ws, n=3)
    bl = box_labeler(p)
    first = bl.image_id
    _send(bl, kind="change", reason="draw", regions=[{"tag_id": _tag(ws, p, "helmet"), "left": 0.1, "top": 0.1,
                                                      "width": 0.2, "height": 0.2}])
    _send(bl, kind="go", to="next")
    assert bl.index == 1 and bl.regions == [] and bl.position == {"index": 1, "total": 3, "labelled": 1,
                                                                  "unlabelled": 2}
    _send(bl, kind="go", to="previous")
    assert bl.image_id == first and [r["tagName"] for r in bl.regions] == ["helmet"]
    _send(bl, kind="go", to="unlabelled")
    assert bl.image_id != first and not ws.get_image(p.id, bl.image_id).regions
    again = box_labeler(Workspace(ws.path).get_project(p.id))
    assert again.image_id != first                                             # images without boxes come first


def test_refusals_are_shown_and_nothing_is_lost(ws):
    from cvlab import rules

    p = _detection(ws)
    bl = box_labeler(p)
    helmet = {"tag_id": _tag(ws, p, "helmet"), "left": 0.1, "top": 0.1, "width": 0.2, "height": 0.2}
    _send(bl, kind="change", reason="draw", regions=[helmet])
    cap = rules.limit("regions_per_image_training")
    _send(bl, kind="change", reason="draw", regions=[dict(helmet, left=0.001 * i) for i in range(cap + 1)])
    assert bl.status["error"] and "BadRequestImageRegions" in bl.status["text"]
    assert len(ws.get_image(p.id, bl.image_id).regions) == 1
    ws.delete_images(p.id, [bl.order[1]])                                       # deleted elsewhere: skipped
    _send(bl, kind="go", to="next")
    assert len(bl.order) == 1


def test_a_tag_typed_in_the_tag_list_is_created(ws):
    p = _detection(ws)
    bl = box_labeler(p)
    sent = []
    bl.send = lambda content, buffers=None: sent.append(content)
    _send(bl, kind="create_tag", name="vest", request=7)
    assert sent[-1]["kind"] == "tag_created" and sent[-1]["request"] == 7 and sent[-1]["tag"]["name"] == "vest"
    assert "vest" in [t["name"] for t in bl.tags] and "vest" in {t.name for t in ws.get_tags(p.id)}
    _send(bl, kind="create_tag", name="vest", request=8)                          # the workspace's rule
    assert sent[-1] == {"kind": "tag_refused", "request": 8, "message": sent[-1]["message"]} and bl.status["error"]


def test_refuses_classification_and_falls_back_to_text(ws):
    with pytest.raises(CvlabError, match="tagger"):
        box_labeler(ws.create_project("parts"))
    bl = box_labeler(_detection(ws))
    data, _metadata = bl._repr_mimebundle_()                                    # anywidget: (data, metadata)
    assert "make lab" in data["text/plain"] and "application/vnd.jupyter.widget-view+json" in data


@pytest.mark.slow
def test_suggestions_from_the_latest_iteration_accept_and_reject(trained_discs):
    from cvlab.datasets.swatches import disc_scene

    ws, od = trained_discs["ws"], trained_discs["project"]
    new = ws.create_images(od.id, [ImageEntry(data=disc_scene(98)[0], name="fresh.jpg")]).images[0].image
    bl = box_labeler(od, threshold=0.05)
    assert bl.image_id == new.id and bl.has_iteration
    sug = bl.pending_suggestions()
    assert sug and all(s["tagName"] == "disc" for s in sug)                   # the project's tag, never "(suggested)"
    assert ws.get_image(od.id, new.id).regions == []                           # suggestions are not labels
    first = sug[0]
    _send(bl, kind="change", reason="accept", regions=[{"tag_id": first["tagId"], **{k: first[k] for k in
                                                                                   ("left", "top", "width", "height")}}])
    (region,) = ws.get_image(od.id, new.id).regions
    assert region.tag_name == "disc" and region.left == pytest.approx(first["left"])
    assert first not in bl.pending_suggestions()
    if bl.pending_suggestions():
        other = bl.pending_suggestions()[0]
        _send(bl, kind="reject", suggestion=other)
        assert other not in bl.pending_suggestions() and "rejected" in bl.status["text"]
    bl.threshold = 0.99
    assert len(bl.pending_suggestions()) <= len(sug)
    ws.set_image_labels(od.id, new.id, regions=[])                             # leave it as found
    assert box_labeler(od, suggestions=False).pending_suggestions() == []

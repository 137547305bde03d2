"""Widget behaviour without a browser: drive the traits and handlers, then read the workspace."""
from __future__ import annotations

import pytest

from cvlab import Workspace
from cvlab.domains import find_domain
from cvlab.errors import CvlabError
from cvlab.widgets import BoxLabeler, Tagger, box_labeler, compare_iterations, quick_test, tagger

from helpers import make_image_bytes


def _classification(ws, kind="Multiclass", n=4, name="parts"):
    p = ws.create_project(name, classification_type=kind)
    for t in ("bolt", "gear", "nut"):
        ws.create_tag(p.id, t)
    for i in range(n):  # created oldest first: image 0 is the first untagged one
        ws.add_images(p.id, [make_image_bytes(64, 48, seed=i)])
    return ws.get_project(p.id)


def _tag_ids(ws, p, image_id):
    return sorted(t.tag_name for t in ws.get_image(p.id, image_id).tags)


def _reopen(ws):
    """The same workspace folder, opened afresh (as a restarted kernel would)."""
    return Workspace(ws.path)


# ---- tagger -----------------------------------------------------------------------------------------------------
def test_tagger_saves_each_click_and_advances_in_multiclass(ws):
    p = _classification(ws)
    t = tagger(p)
    assert isinstance(t, Tagger) and t.ws is ws
    first = t.image_id
    names = [b.description for b in t.tag_bar.children]
    assert names[:3] == ["1 bolt (0)", "2 gear (0)", "3 nut (0)"] and names[3].startswith("0 Negative")
    t.tag_bar.children[1].click()                      # "gear" button
    assert _tag_ids(ws, p, first) == ["gear"]          # saved at once
    assert t.image_id != first and t.index == 1        # multiclass advances to the next image
    assert "1</b> of 4 images tagged" in t.progress.value


def test_multiclass_press_replaces_and_keys_work(ws):
    p = _classification(ws)
    t = Tagger(ws, p, auto_advance=False)
    img = t.image_id
    t.shortcuts.press("1")
    t.shortcuts.press("3")                                  # multiclass: exactly one tag, the last chosen
    assert _tag_ids(ws, p, img) == ["nut"]
    t.shortcuts.press("3")                                  # pressing the applied tag removes it
    assert _tag_ids(ws, p, img) == [] and "Removed: nut" in t.status.text
    t.shortcuts.press("ArrowRight")
    assert t.index == 1
    t.shortcuts.press("ArrowLeft")
    assert t.index == 0
    t.shortcuts.press("x")                                  # not a shortcut: ignored
    assert t.index == 0


def test_multilabel_toggles_and_core_refuses_negative_with_regular(ws):
    p = _classification(ws, "Multilabel")
    t = tagger(p)
    img = t.image_id
    t.shortcuts.press("1")
    t.shortcuts.press("2")
    assert _tag_ids(ws, p, img) == ["bolt", "gear"] and t.image_id == img   # multilabel stays on the image
    t.shortcuts.press("0")                                  # Negative with regular tags: the core says no
    assert _tag_ids(ws, p, img) == ["bolt", "gear"]
    assert "BadRequestNegativeAndRegularTagOnSameImage" in t.status.text
    assert any(tag.type == "Negative" for tag in ws.get_tags(p.id))  # the first press created the tag
    t.shortcuts.press("1")
    t.shortcuts.press("2")
    t.shortcuts.press("0")
    assert _tag_ids(ws, p, img) == ["Negative"]


def test_undo_restores_labels_and_position(ws):
    p = _classification(ws)
    t = tagger(p)
    a = t.image_id
    t.shortcuts.press("1")                                  # tags image a, moves on to b
    b = t.image_id
    t.shortcuts.press("2")                                  # tags b, moves on to c
    t.shortcuts.press("z")
    assert t.image_id == b and _tag_ids(ws, p, b) == []
    t.undo_button.click()
    assert t.image_id == a and _tag_ids(ws, p, a) == []
    t.shortcuts.press("z")
    assert "Nothing to undo" in t.status.text


def test_resume_and_skip_after_restart(ws):
    p = _classification(ws, n=5)
    t = tagger(p)
    first = t.image_id
    t.shortcuts.press("1")
    t.shortcuts.press("2")
    second_untagged = t.order[2]
    t.shortcuts.press("s")                                  # skip: next untagged, nothing saved
    assert t.index == 3
    again = tagger(_reopen(ws).get_project(p.id))      # "kernel restart": a new workspace handle, new widget
    assert again.image_id == second_untagged           # untagged first: it resumes where labeling stopped
    assert again.order[-2:] == [first, t.order[1]]     # the tagged ones come last, for review
    assert "2</b> of 5 images tagged" in again.progress.value
    assert len(again.filmstrip.children) == 3          # itself and two neighbours at the start
    again.filmstrip.children[2].children[1].click()    # a filmstrip caption jumps to that image
    assert again.index == 2


def test_images_deleted_elsewhere_are_skipped(ws):
    p = _classification(ws)
    t = tagger(p)
    ws.delete_images(p.id, [t.order[1]])               # e.g. from another notebook or the REST API
    t.shortcuts.press("1")                             # tags image 0, moves on: image 1 is gone
    assert len(t.order) == 3 and t.index == 1 and "deleted meanwhile" in t.status.text
    assert "of 3 images tagged" in t.progress.value


def test_tagger_refuses_detection_and_explains(ws):
    od = ws.create_project("site", domain_id=find_domain("General (compact)", "ObjectDetection").id)
    with pytest.raises(CvlabError, match="box_labeler"):
        tagger(od)


def test_text_fallback_says_what_to_do(ws):
    p = _classification(ws)
    t = tagger(p.id, ws=ws)
    bundle = t._repr_mimebundle_()
    assert "make lab" in bundle["text/plain"] and "0 of 4 images tagged" in bundle["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "make lab" in repr(t)


def test_tagger_by_name_and_unknown_name(ws):
    _classification(ws)
    assert tagger("parts", ws=ws).project.name == "parts"
    with pytest.raises(CvlabError) as e:
        tagger("nope", ws=ws)
    assert e.value.code == "NotFoundProject"


# ---- box labeler --------------------------------------------------------------------------------------------------
def _detection(ws, n=2, size=(200, 100)):
    p = ws.create_project("site", domain_id=find_domain("General (compact)", "ObjectDetection").id)
    for t in ("helmet", "vest"):
        ws.create_tag(p.id, t)
    for i in range(n):
        ws.add_images(p.id, [make_image_bytes(*size, seed=10 + i)])
    return ws.get_project(p.id)


def test_box_labeler_refuses_classification(ws):
    with pytest.raises(CvlabError, match="tagger"):
        box_labeler(_classification(ws))


def test_box_labeler_fallback_text(ws):
    bl = box_labeler(_detection(ws))
    data, _metadata = bl._repr_mimebundle_()                                    # anywidget: (data, metadata)
    assert "make lab" in data["text/plain"] and "application/vnd.jupyter.widget-view+json" in data
    assert "set_image_labels" in repr(bl)
    # drawing, undo and suggestions: tests/test_widgets_boxes.py (Python side), tests/test_browser_labeling.py


# ---- quick test and comparison before any training ---------------------------------------------------------------
def test_quick_test_without_iteration_says_train_first(ws):
    p = ws.create_project("empty")
    qt = quick_test(p)
    assert "NotFoundIteration" in qt.status.text and "train" in qt.status.text
    assert qt.picture.layout.display == "none"         # no broken-image icon before a test
    assert "make lab" in qt._repr_mimebundle_()["text/plain"]
    assert qt.test(make_image_bytes(64, 48), "x.jpg") == [] and "iteration" in qt.status.text


def test_compare_without_iterations_explains(ws):
    p = ws.create_project("empty")
    with pytest.raises(CvlabError) as e:
        compare_iterations(p)
    assert e.value.code == "NotFoundIteration" and "has 0 trained" in e.value.message

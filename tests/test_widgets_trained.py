"""Widgets on real trained iterations: smart-labeler suggestions, quick test, iteration comparison.

One tiny classification project (Quick training, trained twice) and one tiny detection project (2 epochs) are
trained once per session; the predictor runs in torch so no ONNX export is paid here.
"""
from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest
from PIL import Image

from cvlab.errors import CvlabError
from cvlab.performance import get_iteration_performance
from cvlab.widgets import compare_iterations, quick_test
from cvlab.widgets.quicktest import to_region
from cvlab.workspace import ImageEntry
from cvlab.datasets.swatches import disc_scene
from helpers import shape

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _torch_predictor(monkeypatch):
    monkeypatch.setenv("CVLAB_PREDICTOR_BACKEND", "torch")  # no ONNX export paid here


@pytest.fixture(scope="module")
def discs(trained_discs):
    """The shared detector's project plus one new image without boxes (what the smart labeler shows first)."""
    ws = trained_discs["ws"]
    new = ws.create_images(trained_discs["project"].id, [ImageEntry(data=disc_scene(99)[0], name="new.jpg")])
    return dict(trained_discs, new=new.images[0].image)


# ---- quick test ------------------------------------------------------------------------------------------------
def test_quick_test_classification_bars_threshold_and_storage(trained_shape_iterations):
    shapes = trained_shape_iterations
    ws, cls = shapes["ws"], shapes["project"]
    qt = quick_test(cls)
    assert qt.iteration.value == shapes["its"][1].id  # the latest trained iteration by default
    preds = qt.test(shape("disc", 777), "mine.jpg")
    assert [p["tag_name"] for p in preds][0] == "disc"
    assert sum(p["probability"] for p in preds) == pytest.approx(1.0, abs=1e-3)
    assert len(qt.bars.children) == 2 and qt.picture.value
    qt.threshold.value = 0.0
    assert len(qt.shown()) == 2
    qt.threshold.value = 1.0
    assert qt.shown() == [] and all(row.children[1].bar_style == "" for row in qt.bars.children)
    stored = ws.query_predictions(cls.id, application="QuickTest")
    assert len(stored) == 1 and stored[0].iteration_id == qt.iteration.value
    qt.iteration.value = shapes["its"][0].id          # another iteration re-runs the same image
    assert len(ws.query_predictions(cls.id, application="QuickTest")) == 2


def test_quick_test_upload_sample_and_bad_image(trained_shape_iterations):
    shapes = trained_shape_iterations
    ws, cls = shapes["ws"], shapes["project"]
    before = len(ws.query_predictions(cls.id))
    qt = quick_test(cls.id, ws=ws, store=False)
    qt.upload.value = ({"name": "up.jpg", "type": "image/jpeg", "size": 10, "content": memoryview(shape("stripes", 5)),
                        "last_modified": datetime(2026, 1, 1, tzinfo=timezone.utc)},)
    assert qt.result[0]["tag_name"] == "stripes"
    sample = next(k for k in qt.sample.options if k[1])[1]                 # "" is "no sample"
    qt.sample.value = sample
    assert len(qt.result) == 2 and sample in qt.status.text
    qt.test(b"not an image", "broken.jpg")
    assert "BadRequestImageFormat" in qt.status.text and qt.result == []
    assert len(ws.query_predictions(cls.id)) == before   # store=False keeps them out of Predictions


def test_quick_test_detection_draws_boxes(discs):
    qt = quick_test(discs["project"], store=False, threshold=0.05)
    preds = qt.test(disc_scene(123)[0], "scene.jpg")
    assert preds and all(p["bounding_box"] for p in preds)
    shown_low = len(qt.shown())
    assert f"{shown_low} of {len(preds)} boxes" in qt.bars.children[0].value
    img = Image.open(io.BytesIO(qt.picture.value))
    assert img.size[0] <= 600 and img.size[1] <= 400
    qt.threshold.value = 1.0
    assert "0 of" in qt.bars.children[0].value


# ---- comparison ------------------------------------------------------------------------------------------------
def test_compare_iterations_side_by_side(trained_shape_iterations):
    shapes = trained_shape_iterations
    ws, cls = shapes["ws"], shapes["project"]
    it1, it2 = shapes["its"]
    cmp = compare_iterations(cls)
    assert (cmp.a.value, cmp.b.value) == (it1.id, it2.id)
    pa, pb = cmp.performances
    assert pa.to_dict() == get_iteration_performance(ws, cls.id, it1.id).to_dict()
    assert pb.to_dict() == get_iteration_performance(ws, cls.id, it2.id).to_dict()
    table = cmp.table.value
    assert it1.name in table and it2.name in table and "disc · recall" in table and "stripes · AP" in table
    cmp.threshold.value = 0.9
    assert cmp.performances[0].threshold == 0.9
    assert "threshold 90%" in cmp.table.value


def test_compare_needs_two_iterations(discs):
    with pytest.raises(CvlabError) as e:
        compare_iterations(discs["project"])
    assert e.value.code == "NotFoundIteration" and "two" in e.value.message


# ---- quick test -> add to training (detection; classification is in test_widgets_add_to_training.py) ----------
def _regions(ws, project_id, image_id):
    return sorted((r.tag_id, round(r.left, 3), round(r.top, 3), round(r.width, 3), round(r.height, 3))
                  for r in ws.get_image(project_id, image_id).regions)


def test_quick_test_adds_detection_image_with_edited_boxes(discs):
    ws, od, disc = discs["ws"], discs["project"], discs["tag"]
    qt = quick_test(od, threshold=0.05)
    data = disc_scene(321)[0]
    preds = qt.test(data, "scene.jpg")
    shown = qt.shown()
    assert shown and len(qt.labels_input.bboxes) == len(shown)     # the boxes at or above the threshold
    assert {b["label"] for b in qt.labels_input.bboxes} == {"disc"}
    assert qt.labels_input.classes == ["disc"]
    qt.threshold.value = 1.0                                         # the proposal follows the threshold
    assert qt.labels_input.bboxes == [] and len(preds) > 0
    qt.threshold.value = 0.05
    # The learner keeps the first box (moved a little), deletes the others and draws a missed one.
    kept = dict(qt.labels_input.bboxes[0], x=qt.labels_input.bboxes[0]["x"] + 2)
    drawn = {"x": 5, "y": 6, "width": 30, "height": 20, "label": "disc"}
    qt.labels_input.bboxes = [kept, drawn]
    before = ws.get_image_count(od.id)
    qt.add_button.click()
    assert "Added to training with 2 boxes" in qt.status.text, qt.status.text
    assert ws.get_image_count(od.id) == before + 1
    expected = sorted((r["tag_id"], *(round(r[k], 3) for k in ("left", "top", "width", "height")))
                      for r in (to_region(b, qt._box_size, disc.id) for b in (kept, drawn)))
    assert _regions(ws, od.id, qt.added.id) == expected and ws.get_image(od.id, qt.added.id).tags == []
    qt.add_button.click()                                            # the same image again: refused, unchanged
    assert "already in the project" in qt.status.text
    assert ws.get_image_count(od.id) == before + 1 and _regions(ws, od.id, qt.added.id) == expected


def test_quick_test_detection_add_errors_write_nothing(discs):
    ws, od = discs["ws"], discs["project"]
    qt = quick_test(od, threshold=0.05)
    qt.test(disc_scene(654)[0], "scene.jpg")
    before = ws.get_image_count(od.id)
    qt.labels_input.bboxes = []                                      # every box deleted
    qt.add_button.click()
    assert "at least one box" in qt.status.text and "BadRequestImageRegions" in qt.status.text
    qt.labels_input.bboxes = [{"x": 5, "y": 6, "width": 30, "height": 20, "label": "cat"}]   # not a tag here
    qt.add_button.click()
    assert "Box 1 has no tag of this project" in qt.status.text
    qt.labels_input.bboxes = [{"x": -50, "y": 6, "width": 10, "height": 20, "label": "disc"}]  # off the picture
    qt.add_button.click()
    assert "at least one box" in qt.status.text
    assert ws.get_image_count(od.id) == before

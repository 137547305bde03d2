"""Quick test -> "Add to training" on classification projects (issue 9): the learner corrects the tags the model
proposed and one click adds the stored image through cvlab.active.add_predictions_to_training; every error is
a message on the status line and leaves the workspace as it was. Detection is in test_widgets_trained.py.

Uses a copy of the session's trained "colours" project (conftest.trained_colours: tags red/blue, Multiclass).
"""
from __future__ import annotations

import hashlib

import pytest

from cvlab import Workspace
from cvlab.datasets.swatches import swatch_jpeg
from cvlab.widgets import quick_test

pytestmark = pytest.mark.slow  # the fixture trains a (tiny) model once per session


def colour_image(rgb, seed: int) -> bytes:
    """A noisy patch of one colour, like the fixture's training images but with seeds it never used."""
    return swatch_jpeg(rgb, seed)


RED, BLUE = (200, 30, 30), (30, 40, 200)


@pytest.fixture
def colours(trained_colours, monkeypatch):
    monkeypatch.setenv("CVLAB_PREDICTOR_BACKEND", "torch")  # no ONNX export paid here
    path, info = trained_colours()
    ws = Workspace(path)
    yield ws, ws.get_project(info["project_id"]), info["tags"]
    ws.close()


def snapshot(ws, project_id):
    """Every image of the project with its tags and regions (what "nothing was written" compares)."""
    return sorted((im.sha256, sorted(t.tag_id for t in im.tags), len(im.regions))
                  for im in ws.iter_images(project_id))


def added_image(ws, project_id, data: bytes):
    sha = hashlib.sha256(data).hexdigest()
    found = [im for im in ws.iter_images(project_id) if im.sha256 == sha]
    assert len(found) <= 1
    return found[0] if found else None


def test_multiclass_top_tag_preselected_corrected_and_added(colours):
    ws, p, tags = colours
    qt = quick_test(p, ws=ws)
    assert qt.add_panel.layout.display == "none"              # nothing to add before a stored test
    data = colour_image(RED, 500)
    preds = qt.test(data, "new-red.jpg")
    assert preds[0]["tag_name"] == "red"
    assert qt.add_panel.layout.display is None
    assert qt.labels_input.value == tags["red"]                # the model's top tag is pre-selected
    assert qt.stored is not None and qt.stored.id in {s.id for s in ws.query_predictions(p.id)}
    qt.labels_input.value = tags["blue"]                       # the learner corrects it
    before = ws.get_image_count(p.id)
    qt.add_button.click()
    assert "Added to training with tag blue" in qt.status.text, qt.status.text
    assert ws.get_image_count(p.id) == before + 1
    image = added_image(ws, p.id, data)
    assert image is not None and image.id == qt.added.id
    assert [t.tag_id for t in image.tags] == [tags["blue"]] and image.regions == []
    # A second click is a duplicate: a clear message, the image and its tags unchanged.
    qt.labels_input.value = tags["red"]
    state = snapshot(ws, p.id)
    qt.add_button.click()
    assert "already in the project" in qt.status.text and "Nothing was added" in qt.status.text
    assert snapshot(ws, p.id) == state


def test_multiclass_error_paths_write_nothing(colours):
    ws, p, tags = colours
    state = snapshot(ws, p.id)
    qt = quick_test(p, ws=ws)
    qt.add_button.click()                                      # no test yet
    assert "test an image first" in qt.status.text
    qt.test(colour_image(BLUE, 600), "new-blue.jpg")
    qt.labels_input.value = None                               # no tag chosen
    qt.add_button.click()
    assert "Choose the correct tag" in qt.status.text and "BadRequestImageTags" in qt.status.text
    assert snapshot(ws, p.id) == state
    # A training image tested again is already in the project: refused, its tag untouched.
    qt.sample.value = next(v for _, v in qt.sample.options if v)          # "" is "no sample"
    qt.labels_input.value = tags["red"] if qt.result[0]["tag_name"] == "blue" else tags["blue"]
    qt.add_button.click()
    assert "already in the project" in qt.status.text and "OKDuplicate" in qt.status.text
    assert snapshot(ws, p.id) == state
    # The stored prediction deleted meanwhile: add_predictions_to_training's own NotFound, nothing added.
    qt.test(colour_image(BLUE, 601), "other.jpg")
    ws.delete_predictions(p.id, [qt.stored.id])
    qt.add_button.click()
    assert "No stored prediction" in qt.status.text and "nothing was added" in qt.status.text
    assert snapshot(ws, p.id) == state
    # A tag deleted after it was proposed: the workspace refuses it per image (ErrorInvalidTag).
    qt.test(colour_image(RED, 602), "third.jpg")
    extra = ws.create_tag(p.id, "green")
    qt._propose()
    qt.labels_input.value = extra.id
    ws.delete_tag(p.id, extra.id)
    qt.add_button.click()
    assert "ErrorInvalidTag" in qt.status.text and "Nothing was added" in qt.status.text
    assert snapshot(ws, p.id) == state
    # A failed test clears what could be added.
    qt.test(b"not an image", "broken.jpg")
    assert qt.stored is None and qt.add_panel.layout.display == "none"
    qt.add_button.click()
    assert "test an image first" in qt.status.text
    qt.store = False                                           # as quick_test(..., store=False): nothing to add
    qt.test(colour_image(RED, 603), "unstored.jpg")
    qt.add_button.click()
    assert "store=False" in qt.status.text
    assert snapshot(ws, p.id) == state


def test_multilabel_preselects_tags_above_threshold_and_adds_several(colours):
    ws, p, tags = colours
    ws.update_project(p.id, classification_type="Multilabel")
    round_tag = ws.create_tag(p.id, "round").id
    negative = ws.create_tag(p.id, "Negative", type="Negative").id
    qt = quick_test(p.id, ws=ws, threshold=0.5)
    data = colour_image(RED, 700)
    preds = qt.test(data, "red-round.jpg")
    above = {x["tag_id"] for x in preds if x["probability"] >= 0.5}
    assert above and set(qt.labels_input.value) == above      # every tag at or above the threshold
    qt.threshold.value = 0.0                                   # the proposal follows the threshold
    assert set(qt.labels_input.value) == {x["tag_id"] for x in preds}
    state = snapshot(ws, p.id)
    qt.labels_input.value = (tags["red"], negative)            # Negative with a regular tag: refused
    qt.add_button.click()
    assert "Negative" in qt.status.text and "Nothing was added" in qt.status.text
    assert snapshot(ws, p.id) == state
    qt.labels_input.value = ()
    qt.add_button.click()
    assert "BadRequestImageTags" in qt.status.text and snapshot(ws, p.id) == state
    qt.labels_input.value = (tags["red"], round_tag)
    qt.add_button.click()
    assert "Added to training with tags red, round" in qt.status.text or \
        "Added to training with tags round, red" in qt.status.text, qt.status.text
    image = added_image(ws, p.id, data)
    assert sorted(t.tag_id for t in image.tags) == sorted([tags["red"], round_tag])

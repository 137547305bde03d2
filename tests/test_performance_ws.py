"""Workspace-level loaders of cvlab.performance: a real workspace, an iteration and its evaluation.json."""
import json

import pytest

from cvlab.errors import CvlabError
from cvlab.performance import (
    compare_splits, get_image_performance_count, get_image_performances, get_iteration_performance,
)
from cvlab.workspace import ImageEntry
from conftest import make_image_bytes


@pytest.fixture
def trained(ws):
    """A multiclass project with 4 images, a Completed iteration and a hand-written evaluation.json."""
    p = ws.create_project("perf-test")
    cat, dog = ws.create_tag(p.id, "cat"), ws.create_tag(p.id, "dog")
    entries = [ImageEntry(make_image_bytes(320, 320, seed=i), name=f"im{i}.jpg", tag_ids=[(cat, dog)[i % 2].id])
               for i in range(4)]
    images = [r.image for r in ws.create_images(p.id, entries).images]
    it = ws.create_iteration(p.id)
    tags = [{"id": cat.id, "name": "cat", "type": "Regular"}, {"id": dog.id, "name": "dog", "type": "Regular"}]
    probs = [(0.9, 0.1), (0.7, 0.3), (0.2, 0.8), (0.4, 0.6)]  # truths cat, dog, cat, dog
    records = [{"image_id": im.id, "split": "cv" if i < 3 else "holdout", "fold": i if i < 3 else None,
                "truth": {"tag_ids": [im.tags[0].tag_id], "regions": []},
                "predictions": [{"tag_id": cat.id, "probability": pc, "bounding_box": None},
                                {"tag_id": dog.id, "probability": pd, "bounding_box": None}]}
               for i, (im, (pc, pd)) in enumerate(zip(images, probs))]
    (ws.iteration_dir(it.id) / "evaluation.json").write_text(json.dumps({
        "project_type": "Classification", "classification_type": "Multiclass", "k_folds": 3, "tags": tags,
        "records": records}))
    ws.update_iteration(p.id, it.id, status="Completed")
    return ws, p, it, images, cat, dog


def test_iteration_performance_from_workspace(trained):
    ws, p, it, images, cat, dog = trained
    perf = get_iteration_performance(ws, p.id, it.id, threshold=0.5)
    c, d = perf.per_tag_performance
    # cv: im0 cat->cat TP; im1 dog->cat FP cat, FN dog; im2 cat->dog FP dog, FN cat.
    assert (c.precision, c.recall, d.precision) == (0.5, 0.5, 0.0)
    assert perf.image_count == 3
    hold = get_iteration_performance(ws, p.id, it.id, split="holdout")
    assert (hold.precision, hold.recall) == (1.0, 1.0)
    cmp = compare_splits(ws, p.id, it.id)
    assert cmp.holdout.image_count == 1 and cmp.self_test.image_count == 3


def test_image_performances_from_workspace(trained):
    ws, p, it, images, cat, dog = trained
    newest = get_image_performances(ws, p.id, it.id, order_by="Newest")
    oldest = get_image_performances(ws, p.id, it.id, order_by="Oldest")
    assert [x.id for x in newest] == [x.id for x in reversed(oldest)]
    assert {x.id for x in newest} == {im.id for im in images[:3]}
    assert all(x.width == 320 and x.created is not None for x in newest)
    cats = get_image_performances(ws, p.id, it.id, tag_ids=[cat.id])
    assert [x.id for x in cats] == [images[0].id, images[2].id]
    assert get_image_performance_count(ws, p.id, it.id, tag_ids=[dog.id]) == 1
    assert len(get_image_performances(ws, p.id, it.id, take=1, skip=1)) == 1


def test_workspace_errors(trained):
    ws, p, it, images, cat, dog = trained
    fresh = ws.create_iteration(p.id)
    with pytest.raises(CvlabError) as e:
        get_iteration_performance(ws, p.id, fresh.id)
    assert e.value.code == "BadRequestIterationIsNotTrained"
    ws.update_iteration(p.id, fresh.id, status="Completed")
    with pytest.raises(CvlabError) as e:
        get_iteration_performance(ws, p.id, fresh.id)
    assert e.value.code == "NotFoundIterationPerformance" and e.value.status == 404
    bogus = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(CvlabError) as e:
        get_iteration_performance(ws, p.id, bogus)
    assert e.value.code == "NotFoundIteration"
    assert not (ws.path / "iterations" / bogus).exists()  # no stray folder for a wrong id
    with pytest.raises(CvlabError, match="between 0 and 1"):
        get_iteration_performance(ws, p.id, it.id, threshold=-0.1)
    # A cached evaluation still answers to the iteration's status.
    assert get_iteration_performance(ws, p.id, it.id).image_count == 3
    ws.update_iteration(p.id, it.id, status="Failed")
    with pytest.raises(CvlabError) as e:
        get_iteration_performance(ws, p.id, it.id)
    assert e.value.code == "BadRequestIterationIsNotTrained"

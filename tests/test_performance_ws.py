"""Workspace-level loaders of cvlab.performance: a real workspace, an iteration and its evaluation.json."""
import pytest

from cvlab.errors import CvlabError
from cvlab.performance import (
    compare_splits, get_image_performance_count, get_image_performances, get_iteration_performance,
)


def test_iteration_performance_from_workspace(evaluated_project):
    ws, p, it, images, cat, dog = evaluated_project
    perf = get_iteration_performance(ws, p.id, it.id, threshold=0.5)
    c, d = perf.per_tag_performance
    # cv: im0 cat->cat TP; im1 dog->cat FP cat, FN dog; im2 cat->dog FP dog, FN cat.
    assert (c.precision, c.recall, d.precision) == (0.5, 0.5, 0.0)
    assert perf.image_count == 3
    hold = get_iteration_performance(ws, p.id, it.id, split="holdout")
    assert (hold.precision, hold.recall) == (1.0, 1.0)
    cmp = compare_splits(ws, p.id, it.id)
    assert cmp.holdout.image_count == 1 and cmp.self_test.image_count == 3


def test_image_performances_from_workspace(evaluated_project):
    ws, p, it, images, cat, dog = evaluated_project
    newest = get_image_performances(ws, p.id, it.id, order_by="Newest")
    oldest = get_image_performances(ws, p.id, it.id, order_by="Oldest")
    assert [x.id for x in newest] == [x.id for x in reversed(oldest)]
    assert {x.id for x in newest} == {im.id for im in images[:3]}
    assert all(x.width == 320 and x.created is not None for x in newest)
    cats = get_image_performances(ws, p.id, it.id, tag_ids=[cat.id])
    assert [x.id for x in cats] == [images[0].id, images[2].id]
    assert get_image_performance_count(ws, p.id, it.id, tag_ids=[dog.id]) == 1
    assert len(get_image_performances(ws, p.id, it.id, take=1, skip=1)) == 1


def test_workspace_errors(evaluated_project):
    ws, p, it, images, cat, dog = evaluated_project
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

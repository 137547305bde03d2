"""Notebook 02's practice scenes (issue 18, finding 6: every curriculum image came pre-labelled, so the learner
never drew a box): unlabelled site scenes added once, checked for a box inside another, filled in only where the
learner drew nothing."""
from __future__ import annotations

from cvlab import curriculum as cv


def test_practice_scenes_are_added_once_and_filled_only_where_empty(ws, monkeypatch):
    monkeypatch.setenv("CVLAB_PROFILE", "fast")
    site = cv.course_project(ws, "site")
    scenes = cv.practice_scenes(ws, site)
    assert len(scenes) == 3 and cv.practice_scenes(ws, site).keys() == scenes.keys()   # idempotent
    assert all(not ws.get_image(site.id, i).regions for i in scenes)                  # unlabelled
    mine = next(iter(scenes))
    person = next(t for t in ws.get_tags(site.id) if t.name == "person")
    ws.create_image_regions(site.id, [{"image_id": mine, "tag_id": person.id, "left": 0.1, "top": 0.1,
                                       "width": 0.3, "height": 0.6}])                   # the learner drew one
    assert cv.fill_missing_boxes(ws, site, scenes) == 2
    assert len(ws.get_image(site.id, mine).regions) == 1                                # kept as drawn
    assert cv.fill_missing_boxes(ws, site, scenes) == 0
    found = [pair for i in scenes for pair in cv.nested_boxes(ws.get_image(site.id, i))]
    assert ("helmet", "person") in found or ("vest", "person") in found

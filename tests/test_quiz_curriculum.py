"""Curriculum helpers the notebooks share: profile, environment check, workspace location, course projects."""
from __future__ import annotations

import pytest

from cvlab import curriculum as cv
from cvlab import open_workspace
from cvlab.errors import CvlabError


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("CVLAB_PROFILE", "fast")
    assert cv.profile().name == "fast"
    monkeypatch.delenv("CVLAB_PROFILE")
    assert cv.profile().name == "learner"
    monkeypatch.setenv("CVLAB_PROFILE", "turbo")
    with pytest.raises(CvlabError, match="fast"):
        cv.profile()
    fast, learner = cv.PROFILES["fast"], cv.PROFILES["learner"]
    assert fast.images_per_tag < learner.images_per_tag and fast.detection_images <= learner.detection_images


def test_workspace_location_and_environment_report(monkeypatch, tmp_path):
    monkeypatch.setenv("CVLAB_WORKSPACE", str(tmp_path / "ws"))
    assert cv.workspace_path() == tmp_path / "ws"
    monkeypatch.delenv("CVLAB_WORKSPACE")
    assert cv.workspace_path() == cv.REPO / "workspace"
    checks = cv.check_environment()
    names = {c.name for c in checks}
    assert {"python", "torch", "pretrained weights", "workspace"} <= names
    report = cv.environment_report(checks)
    assert report.count("\n") == len(checks) - 1 and "torch" in report


def test_course_project_is_idempotent_and_sets_images_aside(monkeypatch, tmp_path):
    monkeypatch.setenv("CVLAB_PROFILE", "fast")
    with open_workspace(tmp_path / "ws") as ws:
        with pytest.raises(CvlabError):
            cv.course_project(ws, "cats")
        first = cv.course_project(ws, "parts")
        again = cv.course_project(ws, "parts")
        assert first.id == again.id and first.name == cv.PARTS_PROJECT
        p = cv.profile()
        assert ws.get_image_count(first.id) == p.images_per_tag * 4 + p.holdout_images
        held = [im for im in ws.iter_images(first.id) if im.metadata.get("holdout") == "true"]
        assert len(held) == p.holdout_images
        assert all(t.image_count >= 5 for t in ws.get_tags(first.id))

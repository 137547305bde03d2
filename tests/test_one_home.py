"""Concepts that used to live in several places, now with one home each: every face gets the same answer."""
from __future__ import annotations

import argparse
import threading
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from cvlab import rules
from cvlab.errors import CvlabError
from helpers import COMPACT, make_image_bytes


@pytest.fixture
def two_iterations(ws):
    """Iteration 1 was created first but finished training after Iteration 2 (a long Advanced run, say)."""
    p = ws.create_project("P", domain_id=COMPACT)
    first = ws.create_iteration(p.id)
    second = ws.create_iteration(p.id)
    start = datetime.now(timezone.utc) - timedelta(minutes=10)
    ws.update_iteration(p.id, second.id, status="Completed", trained_at=start + timedelta(minutes=1))
    ws.update_iteration(p.id, first.id, status="Completed", trained_at=start + timedelta(minutes=5))
    return ws, ws.get_project(p.id), ws.get_iteration(p.id, first.id), ws.get_iteration(p.id, second.id)


def test_the_latest_iteration_is_the_most_recently_trained_everywhere(two_iterations, tmp_path, capsys):
    from cvlab.cli import main
    from cvlab.service.routes.predictions import _quick_iteration
    from cvlab.widgets._common import find_iteration

    ws, p, first, second = two_iterations
    assert first.created < second.created and first.trained_at > second.trained_at
    assert ws.latest_iteration(p.id).id == first.id                      # Azure: the newest model
    assert [it.id for it in ws.get_trained_iterations(p.id)] == [second.id, first.id]
    assert p.latest_iteration().id == first.id                           # notebooks, curriculum, quizzes
    assert find_iteration(ws, p.id, None).id == first.id                 # quick test and smart labeler widgets
    assert _quick_iteration(ws, p.id, None).id == first.id               # REST quick test without iterationId
    # `cvlab export` without --iteration tries the same one (it has no model here, so the export fails)
    assert main(["export", "--workspace", str(ws.path), "--project", "P", "--platform", "ONNX",
                 "--out", str(tmp_path / "out")]) == 1
    assert [e.status for e in ws.get_exports(p.id, first.id)] == ["Failed"]
    assert ws.get_exports(p.id, second.id) == []
    running = ws.create_iteration(p.id)
    assert ws.latest_iteration(p.id, status=None).id == running.id       # any status: not trained yet counts
    assert ws.latest_iteration(p.id, status="Failed") is None


def test_a_project_is_found_by_id_then_by_name_with_one_message(ws):
    from cvlab.widgets._common import resolve

    a = ws.create_project("Alpha")
    b = ws.create_project(a.id)  # a project whose name is another project's id: the id wins
    assert ws.resolve_project(a.id).id == a.id and ws.resolve_project(a.id.upper()).id == a.id
    assert ws.resolve_project("alpha").id == a.id and ws.resolve_project(a).id == a.id
    assert resolve("ALPHA", ws)[1].id == a.id and b.name == a.id
    with pytest.raises(CvlabError) as e:
        ws.resolve_project("Nope")
    assert e.value.code == "NotFoundProject" and "no project named 'Nope'" in e.value.message
    assert "'Alpha'" in e.value.message  # the projects there are


def test_the_default_workspace_folder_has_one_meaning(monkeypatch, tmp_path):
    import cvlab
    from cvlab import config, curriculum
    from cvlab.workspace import default_workspace_path

    monkeypatch.delenv("CVLAB_WORKSPACE", raising=False)
    assert default_workspace_path() == curriculum.workspace_path() == config.REPO / "workspace"
    monkeypatch.chdir(tmp_path)  # a notebook's cwd is notebooks/: the folder does not move with it
    assert default_workspace_path() == curriculum.workspace_path() == config.REPO / "workspace"
    monkeypatch.setenv("CVLAB_WORKSPACE", str(tmp_path / "mine"))
    assert default_workspace_path() == curriculum.workspace_path() == tmp_path / "mine"
    ws = cvlab.open_workspace()
    assert ws.path == (tmp_path / "mine").resolve() and curriculum.workspace().path == ws.path
    ws.close()


@pytest.mark.parametrize("box, ok", [
    ((0.1, 0.1, 0.2, 0.2), True),
    ((0.5, 0.5, 0.5 + 5e-4, 0.5), True),     # within the tolerance: float noise at the border
    ((-5e-4, 0.0, 0.5, 0.5), True),
    ((0.5, 0.5, 0.5 + 2e-3, 0.5), False),    # past it: outside the image
    ((0.1, 0.1, 0.0, 0.2), False),           # Azure: a region has a positive width and height
    ((0.1, 0.1, -0.1, 0.2), False),
    ((float("nan"), 0.1, 0.2, 0.2), False),
])
def test_a_box_inside_the_image_is_one_rule(box, ok):
    """The workspace, the file formats, the metrics and the detector's targets agree on every box."""
    from cvlab.datasets import coords
    from cvlab.metrics import check_boxes
    from cvlab.nets.detector import build_detector, fit_detector

    verdicts = {"rule": rules.box_problem(box) is None, "coords": coords.validate_ltwh(box) is None}
    for name, check in (("workspace", lambda: rules.check_region(*box)), ("metrics", lambda: check_boxes([box]))):
        try:
            check()
            verdicts[name] = True
        except CvlabError:
            verdicts[name] = False
    if not ok:  # the detector refuses bad targets before it trains anything
        with pytest.raises(CvlabError) as e:
            fit_detector(build_detector(1, size=64, seed=0), [np.zeros((64, 64, 3), np.uint8)], [[(0, *box)]],
                         advanced=False, epochs=1, time_budget_s=None, seed=0)
        assert e.value.code == "BadRequestImageRegions"
    assert set(verdicts.values()) == {ok}, verdicts


def test_one_export_table_for_the_workspace_and_the_exporter():
    from cvlab.export import _builder

    for row in rules.EXPORT_FLAVORS:
        assert rules.check_export_flavor(row.platform, row.flavor) is row
        if row.build is None:
            with pytest.raises(CvlabError) as e:
                _builder(row.platform, row.flavor)
            assert e.value.code == "BadRequestNotSupported" and e.value.message == row.instead
        else:
            assert _builder(row.platform, row.flavor) == (row.build, row.quantization)
    assert rules.EXPORT_PLATFORMS == ("CoreML", "TensorFlow", "DockerFile", "ONNX", "VAIDK", "OpenVino")
    with pytest.raises(CvlabError) as e:
        rules.check_export_flavor("ONNX", "TensorFlowLite")
    assert e.value.code == "BadRequestExportValidationFailed"
    assert "ONNX10, ONNX12, OnnxFloat16 or none" in e.value.message
    # Azure's export samples document OnnxFloat16; cvlab does not build it and says what to export instead
    fp16 = rules.check_export_flavor("ONNX", "OnnxFloat16")
    assert fp16.build is None and fp16.source == rules.EXPORT_SAMPLES and not fp16.cvlab_only
    cvlab_only = [(r.platform, r.flavor) for r in rules.EXPORT_FLAVORS if r.cvlab_only]
    assert cvlab_only == [("TensorFlow", "TensorFlowLiteInt8")]


def test_the_job_runner_counts_runs_cancels_and_waits():
    from cvlab.jobs import Jobs

    jobs = Jobs("test")
    gate, started = threading.Event(), threading.Event()
    flag = jobs.register("a")

    def work():
        started.set()
        gate.wait(10)
        return "cancelled" if flag.is_set() else "done"
    future = jobs.submit("a", work)
    assert started.wait(10) and jobs.running() == ["a"]
    assert jobs.cancel("a") and not jobs.cancel("unknown")
    gate.set()
    assert future.result(10) == "cancelled" and jobs.wait("a", 1) in (None, "cancelled")
    assert jobs.running() == [] and jobs.run("b", lambda: 7) == 7 and jobs.running() == []


def test_rules_that_lived_elsewhere_are_in_rules():
    with pytest.raises(CvlabError) as e:
        rules.check_application_name("x" * 65)
    assert e.value.code == "BadRequestPredictionInvalidApplicationName"
    rules.check_application_name(None)
    from cvlab.portal import outbox

    for bad in ("nobody", "a@b", "two@at@example.com", "a b@example.com", "x" * 250 + "@example.com", 7):
        for check in (rules.check_notification_email, outbox.check_address):  # one e-mail rule for both
            with pytest.raises(CvlabError) as e:
                check(bad)
            assert e.value.code == "BadRequestInvalidEmailAddress" and "name@example.com" in e.value.message
    assert rules.check_notification_email(" learner@example.com ") == outbox.check_address("learner@example.com")
    assert rules.check_notification_email(None) is None


def test_a_prediction_query_token_has_one_validator(ws):
    """The REST body and a notebook's dict go through the same schema (cvlab.service.schemas)."""
    from cvlab.service import wire
    from cvlab.service.schemas import PredictionQueryToken

    body = {"orderBy": "Oldest", "maxCount": 5, "tags": [{"id": "x", "minThreshold": 0.2}],
            "startTime": "2026-01-31T12:00:00Z"}
    from_dict = wire.prediction_query(body)
    assert from_dict == wire.prediction_query(PredictionQueryToken.model_validate(body))
    assert from_dict["start_time"].tzinfo is not None and from_dict["tags"][0]["min_threshold"] == 0.2
    assert wire.prediction_query({"order_by": "Oldest", "max_count": 5})["max_count"] == 5
    for bad, code in (({"orderby": "Newest"}, "BadRequestPredictionInvalidQueryParameters"),
                      ({"startTime": "yesterday"}, "BadRequestPredictionInvalidQueryParameters"),
                      ({"maxCount": "many"}, "BadRequestPredictionResultsExceededCount")):
        with pytest.raises(CvlabError) as e:
            wire.prediction_query(bad)
        assert e.value.code == code, bad


def test_the_quiz_table_is_gone_and_nothing_reads_it(ws):
    assert not hasattr(ws, "record_quiz_result") and not hasattr(ws, "get_quiz_results")
    tables = {r[0] for r in ws._q("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "quiz_results" not in tables and "settings" in tables


def test_commands_resolve_projects_the_same_way(ws, capsys):
    from cvlab.cli import train as train_command

    ws.create_images(ws.create_project("Real").id, [make_image_bytes()])
    parser = argparse.ArgumentParser()
    train_command.configure(parser)
    with pytest.raises(CvlabError) as e:
        train_command.run(parser.parse_args(["--workspace", str(ws.path), "--project", "Missing"]))
    assert e.value.code == "NotFoundProject" and "no project named 'Missing'" in e.value.message

"""Workshop mode over HTTP with the official SDK: seats are isolated on every route family, training is queued
fairly (Queued + queue_position, FIFO), the instructor sees progress and quiz scores, reset touches one seat."""
from __future__ import annotations

import json
import re
import threading
import time
import uuid

import pytest
import requests
from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
from azure.cognitiveservices.vision.customvision.training.models import (
    CustomVisionErrorException, ImageFileCreateBatch, ImageFileCreateEntry, ImageUrl)
from msrest.authentication import ApiKeyCredentials
from msrest.exceptions import HttpOperationError

from cvlab import workshop
from cvlab.service import start_background
from cvlab.service.app import PREDICTION_PREFIX, TRAINING_PREFIX
from cvlab.workspace import Workspace
from helpers import colour_jpeg

pytestmark = pytest.mark.timeout(240)
RED, BLUE = (200, 30, 30), (30, 40, 200)


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    # the torch predictor backend skips an ONNX conversion per iteration (the ONNX path is covered elsewhere)
    mp = pytest.MonkeyPatch()
    mp.setenv("CVLAB_PREDICTOR_BACKEND", "torch")
    ws = Workspace(tmp_path_factory.mktemp("workshop") / "ws")
    seats = workshop.create_seats(ws, 3)
    handle = start_background(ws, rate_limits=False)
    yield handle, ws, {s.name: s for s in seats}
    handle.stop()
    ws.close()
    mp.undo()


def clients(handle, seat):
    t = CustomVisionTrainingClient(handle.endpoint, ApiKeyCredentials(in_headers={"Training-key": seat.training_key}))
    p = CustomVisionPredictionClient(handle.endpoint,
                                     ApiKeyCredentials(in_headers={"Prediction-key": seat.prediction_key}))
    return t, p


def colour_project(trainer, name, offset=0, n=5):
    d = next(d for d in trainer.get_domains() if d.type == "Classification" and d.name == "General (compact)")
    project = trainer.create_project(name, domain_id=d.id)
    red, blue = trainer.create_tag(project.id, "red"), trainer.create_tag(project.id, "blue")
    entries = [ImageFileCreateEntry(name=f"r{i}.jpg", contents=colour_jpeg(RED, offset + i), tag_ids=[red.id])
               for i in range(n)]
    entries += [ImageFileCreateEntry(name=f"b{i}.jpg", contents=colour_jpeg(BLUE, offset + 50 + i),
                                     tag_ids=[blue.id]) for i in range(n)]
    assert trainer.create_images_from_files(project.id, ImageFileCreateBatch(images=entries)).is_batch_successful
    return project, red, blue


def wait_done(trainer, project_id, iteration_id, timeout=200):
    deadline = time.monotonic() + timeout
    while True:
        it = trainer.get_iteration(project_id, iteration_id)
        if it.status not in ("Training", "Queued"):
            return it
        assert time.monotonic() < deadline, "training did not finish"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def seat_a(room):
    """seat-01's project, trained, published and quick-tested: the thing other seats must not reach."""
    handle, ws, seats = room
    trainer, predictor = clients(handle, seats["seat-01"])
    project, red, blue = colour_project(trainer, "Colours")
    it = wait_done(trainer, project.id, trainer.train_project(project.id).id)
    assert it.status == "Completed", it.training_error_details
    trainer.publish_iteration(project.id, it.id, "prod", seats["seat-01"].prediction_resource_id)
    res = predictor.classify_image(project.id, "prod", colour_jpeg(RED, 999))
    assert res.predictions[0].tag_name == "red"
    image = trainer.get_tagged_images(project.id)[0]
    return dict(project=project, red=red, blue=blue, iteration=it, image=image, prediction_id=res.id)


@pytest.mark.slow  # seat_a trains through the SDK
def test_other_seats_never_reach_a_project_with_the_sdk(room, seat_a):
    handle, ws, seats = room
    b_trainer, b_predictor = clients(handle, seats["seat-02"])
    pid, iid, tid = seat_a["project"].id, seat_a["iteration"].id, seat_a["red"].id
    assert b_trainer.get_projects() == []
    calls = {  # one per route family, each with seat-01's real ids
        "projects": lambda: b_trainer.get_project(pid),
        "projects/update": lambda: b_trainer.update_project(pid, seat_a["project"]),
        "projects/delete": lambda: b_trainer.delete_project(pid),
        "tags": lambda: b_trainer.get_tags(pid),
        "tags/create": lambda: b_trainer.create_tag(pid, "sneaky"),
        "tags/delete": lambda: b_trainer.delete_tag(pid, tid),
        "images": lambda: b_trainer.get_tagged_images(pid),
        "images/upload": lambda: b_trainer.create_images_from_data(pid, colour_jpeg(RED, 7)),
        "images/delete": lambda: b_trainer.delete_images(pid, [seat_a["image"].id]),
        "iterations": lambda: b_trainer.get_iteration(pid, iid),
        "train": lambda: b_trainer.train_project(pid, force_train=True),
        "performance": lambda: b_trainer.get_iteration_performance(pid, iid),
        "performance/images": lambda: b_trainer.get_image_performances(pid, iid),
        "publish": lambda: b_trainer.publish_iteration(pid, iid, "stolen", seats["seat-02"].prediction_resource_id),
        "unpublish": lambda: b_trainer.unpublish_iteration(pid, iid),
        "export": lambda: b_trainer.export_iteration(pid, iid, "ONNX"),
        "exports": lambda: b_trainer.get_exports(pid, iid),
        "quick test": lambda: b_trainer.quick_test_image(pid, colour_jpeg(RED, 8)),
        "quick test url": lambda: b_trainer.quick_test_image_url(pid, ImageUrl(url="http://127.0.0.1:9/x.jpg")),
        "stored predictions": lambda: b_trainer.delete_prediction(pid, [seat_a["prediction_id"]]),
        "suggestions": lambda: b_trainer.suggest_tags_and_regions(pid, iid, [seat_a["image"].id]),
        "project export": lambda: b_trainer.export_project(pid),
    }
    for family, call in calls.items():
        with pytest.raises(CustomVisionErrorException) as e:
            call()
        assert e.value.response.status_code == 404, (family, e.value.response.text)
    for call in (lambda: b_predictor.classify_image(pid, "prod", colour_jpeg(RED, 9)),
                 lambda: b_predictor.classify_image_with_no_store(pid, "prod", colour_jpeg(RED, 9))):
        with pytest.raises(HttpOperationError) as e:
            call()
        assert e.value.response.status_code == 404
    # seat-01's data is intact and its own keys still work
    a_trainer, a_predictor = clients(handle, seats["seat-01"])
    assert [t.name for t in a_trainer.get_tags(pid)] == ["blue", "red"] or \
        sorted(t.name for t in a_trainer.get_tags(pid)) == ["blue", "red"]
    assert a_trainer.get_iteration(pid, iid).publish_name == "prod"
    assert a_trainer.get_image_count(pid) == 10
    # a seat may reuse a name another seat took: its own resource, its own names
    assert b_trainer.create_project("Colours").name == "Colours"
    # the instructor's own workspace does not show seats' projects either
    admin = CustomVisionTrainingClient(handle.endpoint, ApiKeyCredentials(in_headers={"Training-key":
                                                                                      handle.training_key}))
    assert all(p.id != pid for p in admin.get_projects())


def _routes(handle, ids):
    spec = handle.app.openapi()
    for path, methods in spec["paths"].items():
        if "{projectId}" not in path or not path.startswith((TRAINING_PREFIX, PREDICTION_PREFIX)):
            continue
        api = "training" if path.startswith(TRAINING_PREFIX) else "prediction"
        url = re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)
        for method in methods:
            yield method.upper(), handle.endpoint + url, api


@pytest.mark.slow  # seat_a trains through the SDK
def test_every_project_route_is_refused_to_another_seat(room, seat_a):
    handle, ws, seats = room
    b = seats["seat-02"]
    ids = {"projectId": seat_a["project"].id, "iterationId": seat_a["iteration"].id, "tagId": seat_a["red"].id,
           "imageId": seat_a["image"].id, "publishedName": "prod"}
    sw = workshop.open_seat(ws, "seat-01")
    before = sw.check(verify_hashes=False)["counts"]
    routes = list(_routes(handle, ids))
    assert len(routes) >= 40
    statuses = []
    for method, url, api in routes:
        key = {"Training-Key": b.training_key} if api == "training" else {"Prediction-Key": b.prediction_key}
        params = {"name": "x", "publishName": "x", "predictionId": b.prediction_resource_id, "platform": "ONNX",
                  "imageIds": ids["imageId"], "tagIds": ids["tagId"], "ids": str(uuid.uuid4()),
                  "regionIds": str(uuid.uuid4()), "iterationId": ids["iterationId"], "path": "iterations/x/y",
                  "all": "true"}
        r = requests.request(method, url, headers=key, params=params, timeout=60,
                             json={"url": "http://127.0.0.1:9/x.jpg", "images": [{"id": ids["imageId"]}],
                                   "tags": [{"imageId": ids["imageId"], "tagId": ids["tagId"]}]})
        assert r.status_code in (400, 404), (method, url, r.status_code, r.text[:200])
        statuses.append(r.status_code)
        # seat-01's own key on the other API is refused outright
        other = {"Prediction-Key": seats["seat-01"].prediction_key} if api == "training" else \
            {"Training-Key": seats["seat-01"].training_key}
        assert requests.request(method, url, headers=other, timeout=30).status_code == 401
    print("404s:", statuses.count(404), "of", len(statuses))
    assert statuses.count(404) >= 0.8 * len(statuses)  # mostly "no such project"; the rest bad input, never 2xx
    assert sw.check(verify_hashes=False)["counts"] == before
    sw.close()


@pytest.mark.slow  # seat_a trains through the SDK
def test_blob_urls_are_per_seat(room, seat_a):
    handle, ws, seats = room
    a_trainer, _ = clients(handle, seats["seat-01"])
    img = a_trainer.get_tagged_images(seat_a["project"].id)[0]
    assert "/cvlab/seats/seat-01/blobs/" in img.original_image_uri
    assert requests.get(img.original_image_uri, timeout=30).status_code == 200
    # the same signed path under another seat does not open
    other = img.original_image_uri.replace("/seat-01/", "/seat-02/")
    assert requests.get(other, timeout=30).status_code in (403, 404)


@pytest.mark.slow  # seat_a trains through the SDK
def test_training_is_queued_fairly(room, seat_a):
    handle, ws, seats = room
    jobs = []
    for k, name in enumerate(("seat-01", "seat-02", "seat-03")):
        trainer, _ = clients(handle, seats[name])
        project = seat_a["project"] if name == "seat-01" else colour_project(trainer, f"Queue {name}", 100 * k)[0]
        jobs.append((trainer, project.id))
    submitted = []
    for trainer, pid in jobs:  # one after the other, so the FIFO order is known
        submitted.append(trainer.train_project(pid, force_train=True))
    assert [s.status for s in submitted[1:]] == ["Queued", "Queued"]
    # the stored Iteration carries its place in line (the SDK's model has no field for it; progress shows it)
    sw = workshop.open_seat(ws, "seat-03")
    stored = sw.get_iteration(jobs[2][1], submitted[2].id)
    sw.close()
    assert stored.status in ("Queued", "Training", "Completed")
    if stored.status == "Queued":
        assert stored.queue_position in (1, 2)
    r = requests.get(f"{handle.endpoint}/cvlab/workshop/progress", headers={"Training-Key": handle.training_key},
                     timeout=30).json()
    positions = {w["iteration_id"]: w["queue_position"] for w in r["queue"]["waiting"]}
    if submitted[2].id in positions:
        assert positions[submitted[2].id] > positions.get(submitted[1].id, 0)
        seat3 = requests.get(f"{handle.endpoint}/cvlab/workshop/seats/seat-03/progress",
                             headers={"Training-Key": handle.training_key}, timeout=30).json()
        listed = [i for i in seat3["iterations"] if i["id"] == submitted[2].id]
        assert listed and listed[0]["status"] in ("Queued", "Training", "Completed")
    done = [wait_done(t, pid, it.id) for (t, pid), it in zip(jobs, submitted)]
    assert [d.status for d in done] == ["Completed"] * 3
    assert done[0].trained_at <= done[1].trained_at <= done[2].trained_at  # first come, first served
    for (t, pid), d in zip(jobs, submitted):
        assert t.get_iteration(pid, d.id).status == "Completed"


@pytest.mark.slow  # seat_a trains through the SDK
def test_progress_quiz_and_reset(room, seat_a):
    handle, ws, seats = room
    url = f"{handle.endpoint}/cvlab/workshop"
    b_trainer, _ = clients(handle, seats["seat-02"])
    mine = b_trainer.create_project("Reset me")  # what this test resets: set up here, whatever ran before
    r = requests.post(f"{url}/quiz", headers={"Training-Key": seats["seat-02"].training_key}, timeout=30,
                      json={"quiz": "ai102-custom-vision", "answered": 10, "correct": 7})
    assert r.status_code == 200 and r.json()["score"] == 0.7
    assert requests.post(f"{url}/quiz", headers={"Training-Key": "nope"}, json={}, timeout=30).status_code == 401
    bad = requests.post(f"{url}/quiz", headers={"Training-Key": seats["seat-02"].training_key}, timeout=30,
                        json={"quiz": "x", "answered": 3, "correct": 5})
    assert bad.status_code == 400 and "cannot exceed" in bad.json()["message"]
    # the helper a learner may call without joining: their own quiz progress, sent only when they choose to
    from cvlab import quiz
    laptop = Workspace(ws.path.parent / "learner-laptop")
    with pytest.raises(workshop.CvlabError):
        workshop.submit_quiz_scores(handle.endpoint, seats["seat-03"].training_key, ws=laptop)
    for q, right in zip(quiz.questions()[:4], (True, True, False, True)):
        quiz.record(laptop, quiz.Grade(q.id, right, "", ""))
    sent = workshop.submit_quiz_scores(handle.endpoint, seats["seat-03"].training_key, ws=laptop)
    assert (sent["seat"], sent["answered"], sent["correct"], sent["score"]) == ("seat-03", 4, 3, 0.75)
    laptop.close()
    # learners' keys do not open the instructor's view
    assert requests.get(f"{url}/progress", headers={"Training-Key": seats["seat-01"].training_key},
                        timeout=30).status_code == 403
    admin = {"Training-Key": handle.training_key}
    raw = requests.get(f"{url}/progress", headers=admin, timeout=60).text
    assert not any(s.training_key in raw or s.prediction_key in raw for s in seats.values())  # no keys in it
    prog = json.loads(raw)
    rows = {r["seat"]: r["cells"] for r in prog["rows"]}
    assert set(rows) == {"seat-01", "seat-02", "seat-03"}
    assert rows["seat-01"]["best"]["value"] > 0 and rows["seat-01"]["published"]["text"] == "Colours/prod"
    a = requests.get(f"{url}/seats/seat-01/progress", headers=admin, timeout=60).json()
    trained = next(i for i in a["iterations"] if i["id"] == seat_a["iteration"].id)
    assert (trained["source"], trained["project"]) == ("seat", "Colours")
    assert trained["metrics"]["precision"] is not None
    scores = {s: requests.get(f"{url}/seats/{s}/progress", headers=admin, timeout=60).json()["submitted_quiz_scores"]
              for s in ("seat-02", "seat-03")}
    assert scores["seat-02"][0]["score"] == 0.7 and scores["seat-03"][0]["score"] == 0.75
    assert prog["queue"]["slots"] == 1 and "longest_wait_s" in prog["queue"]
    # reset seat-02 only (over HTTP, as the instructor)
    r = requests.post(f"{url}/seats/seat-02/reset", headers=admin, timeout=120)
    assert r.status_code == 200 and r.json()["projects_removed"] >= 1
    assert all(p.id != mine.id for p in b_trainer.get_projects()) and b_trainer.get_projects() == []
    a_trainer, _ = clients(handle, seats["seat-01"])
    assert any(p.id == seat_a["project"].id for p in a_trainer.get_projects())
    after = requests.get(f"{url}/seats/seat-02/progress", headers=admin, timeout=60).json()
    assert after["submitted_quiz_scores"] == [] and after["iterations"] == []


def test_handout_and_seat_rules(tmp_path):
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(workshop.CvlabError):
        workshop.handout(ws, "http://x")
    seats = workshop.create_seats(ws, 2)
    again = workshop.create_seats(ws, 3)
    assert [s.training_key for s in again[:2]] == [s.training_key for s in seats]  # keys survive
    assert len({s.training_key for s in again} | {s.prediction_key for s in again}) == 6
    assert "***" in repr(again[0]) and again[0].training_key not in repr(again[0])
    md = workshop.handout(ws, "http://10.0.0.5:8080", "md")
    html = workshop.handout(ws, "http://10.0.0.5:8080", "html", seats=["seat-02"])
    for s in again:
        assert s.training_key in md and s.prediction_key in md
    assert again[1].training_key in html and again[0].training_key not in html
    assert 'CustomVisionTrainingClient(ENDPOINT' in md and "http://10.0.0.5:8080" in html
    assert workshop.match_key(again, "training", [again[2].training_key]).name == "seat-03"
    assert workshop.match_key(again, "prediction", [again[2].training_key]) is None
    with pytest.raises(workshop.CvlabError):
        workshop.create_seats(ws, 0)
    with pytest.raises(workshop.CvlabError):
        workshop.get_seat(ws, "seat-99")
    renewed = workshop.reset_seat(ws, "seat-01", new_keys=True)
    assert renewed["new_keys"] and workshop.get_seat(ws, "seat-01").training_key != seats[0].training_key
    assert workshop.get_seat(ws, "seat-02").training_key == seats[1].training_key
    ws.close()


def test_queue_orders_and_renumbers(tmp_path):
    """The queue alone, on a real workspace: FIFO admission, positions 1..n renumbered as the line moves."""
    ws = Workspace(tmp_path / "ws")
    p = ws.create_project("q")
    its = [ws.create_iteration(p.id, name=f"Iteration {i}", status="Training") for i in range(4)]
    q = workshop.TrainingQueue(slots=1)
    assert q.enqueue(ws, p.id, its[0].id) is None  # unregistered workspaces are not queued
    q.register(ws, "seat-x")
    tickets = [q.enqueue(ws, p.id, it.id) for it in its]
    assert [ws.get_iteration(p.id, it.id).queue_position for it in its] == [None, 1, 2, 3]
    assert [ws.get_iteration(p.id, it.id).status for it in its] == ["Training", "Queued", "Queued", "Queued"]
    order = []

    def train(i):
        with tickets[i]:
            order.append(i)
            time.sleep(0.05)
    threads = [threading.Thread(target=train, args=(i,)) for i in (3, 2, 1, 0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2, 3]
    # a cancelled waiter leaves the line at once; the ones behind move up
    more = [ws.create_iteration(p.id, name=f"Iteration {i}", status="Training") for i in range(4, 7)]
    held = [q.enqueue(ws, p.id, it.id) for it in more]
    held[0].__enter__()
    assert q.cancel(more[1].id) and not q.cancel(more[0].id)
    assert ws.get_iteration(p.id, more[2].id).queue_position == 1
    with pytest.raises(InterruptedError):
        held[1].__enter__()
    held[0].__exit__(None, None, None)
    with held[2]:
        assert ws.get_iteration(p.id, more[2].id).status == "Training"
    snap = q.snapshot()
    assert snap["admitted"] == 6 and snap["waiting"] == [] and snap["longest_wait_s"] > 0
    ws.close()


def test_a_seat_left_training_by_a_stopped_server_can_train_again(tmp_path):
    ws = Workspace(tmp_path / "ws")
    seat = workshop.create_seats(ws, 1)[0]
    sw = workshop.open_seat(ws, seat.name)
    p = sw.create_project("left over")
    stuck = sw.create_iteration(p.id, name="Iteration 1", status="Queued", queue_position=3)
    sw.close()
    with start_background(ws, rate_limits=False) as handle:
        trainer, _ = clients(handle, seat)
        it = trainer.get_iteration(p.id, stuck.id)
        assert it.status == "Failed" and it.training_error_details == "interrupted"
    ws.close()

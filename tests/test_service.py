"""The local endpoint driven by the official SDK (azure-cognitiveservices-vision-customvision 3.1.1) over HTTP:
one uvicorn server on 127.0.0.1 for this module, real workspace, real training, real predictions."""
from __future__ import annotations

import http.server
import io
import threading
import time

import numpy as np
import pytest
import requests
from PIL import Image, ImageDraw

from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
from azure.cognitiveservices.vision.customvision.prediction.models import \
    CustomVisionErrorException as PredictionError
from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
from azure.cognitiveservices.vision.customvision.training.models import (
    CustomVisionErrorException, ImageFileCreateBatch, ImageFileCreateEntry, ImageUrlCreateBatch,
    ImageUrlCreateEntry, PredictionQueryTag, PredictionQueryToken, Region)
from msrest.authentication import ApiKeyCredentials

from cvlab.service import start_background
from cvlab.workspace import Workspace
from cvlab.datasets.swatches import swatch_jpeg

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # trains real (tiny) models


# ---- images --------------------------------------------------------------------------------------------------
def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def colour_image(rgb, seed: int, size: int = 96) -> bytes:
    return swatch_jpeg(rgb, seed, size)


def shape_image(circle: bool, square: bool, seed: int, size: int = 96) -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(200, 256, 3)))
    d = ImageDraw.Draw(img)
    if circle:
        d.ellipse([8, 8, 44, 44], fill=(220, 30, 30))
    if square:
        d.rectangle([52, 52, 88, 88], fill=(30, 30, 220))
    d.point([(int(x), int(y)) for x, y in rng.integers(0, size, (40, 2))], fill=(0, 0, 0))
    return _jpeg(img)


def box_image(seed: int, w: int = 320, h: int = 256):
    """A dark rectangle on a light noisy background; returns (bytes, normalised box)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(170, 230, (h, w, 3), dtype=np.uint8)
    bw, bh = int(rng.integers(70, 120)), int(rng.integers(60, 110))
    x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
    arr[y0:y0 + bh, x0:x0 + bw] = (40, 90, 40)
    return _jpeg(Image.fromarray(arr)), (x0 / w, y0 / h, bw / w, bh / h)


RED, BLUE = (200, 30, 30), (30, 40, 200)


# ---- fixtures: one server, two clients, one image host ----------------------------------------------------------
@pytest.fixture(scope="module")
def service(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("service") / "ws")
    handle = start_background(ws, rate_limits=False)
    yield handle
    handle.stop()
    ws.close()


@pytest.fixture(scope="module")
def ws(service):
    return service.app.state.ctx.ws


@pytest.fixture(scope="module")
def trainer(service):
    return CustomVisionTrainingClient(service.training_endpoint,
                                      ApiKeyCredentials(in_headers={"Training-key": service.training_key}))


@pytest.fixture(scope="module")
def predictor(service):
    return CustomVisionPredictionClient(service.prediction_endpoint,
                                        ApiKeyCredentials(in_headers={"Prediction-key": service.prediction_key}))


@pytest.fixture(scope="module")
def image_host():
    """A second loopback HTTP server: put bytes in .files[path], fetch them at .url(path)."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            data = files.get(self.path)
            self.send_response(200 if data is not None else 404)
            self.send_header("Content-Length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.files = files
    server.url = lambda path: f"http://127.0.0.1:{server.server_address[1]}{path}"
    with pytest.MonkeyPatch.context() as mp:  # URL fetches refuse loopback unless the lab allows its image server
        mp.setenv("CVLAB_ALLOW_PRIVATE_URLS", f"127.0.0.1:{server.server_address[1]}")
        yield server
    server.shutdown()


def wait_trained(trainer, project_id, iteration, timeout=240):
    deadline = time.monotonic() + timeout
    while iteration.status == "Training":
        assert time.monotonic() < deadline, "training did not finish"
        time.sleep(0.3)
        iteration = trainer.get_iteration(project_id, iteration.id)
    return iteration


def domain(trainer, type_, name):
    return next(d for d in trainer.get_domains() if d.type == type_ and d.name == name)


# ---- multiclass: the quickstart flow --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def multiclass(trainer, service):
    d = domain(trainer, "Classification", "General (compact)")
    project = trainer.create_project("Colours", description="red or blue", domain_id=d.id,
                                     classification_type="Multiclass")
    red = trainer.create_tag(project.id, "red")
    blue = trainer.create_tag(project.id, "blue")
    entries = [ImageFileCreateEntry(name=f"red_{i}.jpg", contents=colour_image(RED, i), tag_ids=[red.id])
               for i in range(6)]
    entries += [ImageFileCreateEntry(name=f"blue_{i}.jpg", contents=colour_image(BLUE, 100 + i), tag_ids=[blue.id])
                for i in range(6)]
    entries.append(ImageFileCreateEntry(name="corrupt.jpg", contents=b"\xff\xd8\xff\xe0 not really a jpeg",
                                        tag_ids=[red.id]))
    entries.append(ImageFileCreateEntry(name="huge.jpg", contents=b"\xff\xd8" + bytes(6 * 1024 * 1024 + 10),
                                        tag_ids=[red.id]))
    upload = trainer.create_images_from_files(project.id, ImageFileCreateBatch(images=entries))
    iteration = trainer.train_project(project.id)
    started_status = iteration.status
    iteration = wait_trained(trainer, project.id, iteration)
    return dict(project=project, red=red, blue=blue, upload=upload, iteration=iteration,
                started_status=started_status)


def test_handle_settings_in_both_spellings(service):
    s = service.settings()
    assert s["VISION_TRAINING_ENDPOINT"] == s["TrainingEndpoint"] == service.training_endpoint
    assert s["PredictionKey"] == service.prediction_key and s["VISION_PREDICTION_RESOURCE_ID"].startswith("/subscr")
    assert service.training_key not in repr(service)


def test_domains_have_azure_ids_and_names(trainer):
    doms = trainer.get_domains()
    general = domain(trainer, "Classification", "General")
    assert general.id == "ee85a74c-405e-4adc-bb47-ffa8ca0c9f31" and general.exportable is False
    od = domain(trainer, "ObjectDetection", "General (compact)")
    assert od.id == "a27d5ca5-bb19-49d8-a70a-fec086c47f5b" and od.exportable
    assert trainer.get_domain(od.id).name == "General (compact)"
    assert len(doms) >= 16


def test_batch_upload_reports_per_image_status(multiclass, trainer):
    up = multiclass["upload"]
    assert up.is_batch_successful is False  # 207: some failed
    statuses = [i.status for i in up.images]
    assert statuses[:12] == ["OK"] * 12
    assert statuses[12:] == ["ErrorImageFormat", "ErrorImageSize"]
    assert up.images[0].source_url == '"red_0.jpg"'  # Azure wraps file names in quotes
    assert up.images[12].image is None
    first = up.images[0].image
    assert first.width == 96 and first.tags[0].tag_name == "red"
    p = multiclass["project"]
    assert trainer.get_tagged_image_count(p.id) == 12
    assert trainer.get_untagged_image_count(p.id) == 0
    assert trainer.get_image_count(p.id, tag_ids=[multiclass["red"].id]) == 6
    page = trainer.get_tagged_images(p.id, take=5, skip=0)
    assert len(page) == 5
    assert {t.image_count for t in trainer.get_tags(p.id)} == {6}


def test_image_uris_serve_the_bytes(multiclass, trainer):
    img = trainer.get_images(multiclass["project"].id, take=1)[0]
    original = requests.get(img.original_image_uri, timeout=10)
    assert original.status_code == 200 and original.content[:2] == b"\xff\xd8"
    thumb = requests.get(img.thumbnail_uri, timeout=10)
    assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).size[0] <= 256
    tampered = requests.get(img.original_image_uri.replace("sig=", "sig=0"), timeout=10)
    assert tampered.status_code == 403 and tampered.json()["code"] == "Forbidden"


def test_training_is_asynchronous_and_completes(multiclass, trainer):
    assert multiclass["started_status"] == "Training"
    it = multiclass["iteration"]
    assert it.status == "Completed" and it.trained_at is not None
    assert it.exportable is True and "ONNX" in it.exportable_to
    assert [i.id for i in trainer.get_iterations(multiclass["project"].id)] == [it.id]


def test_performance_at_two_thresholds(multiclass, trainer):
    p, it = multiclass["project"], multiclass["iteration"]
    low = trainer.get_iteration_performance(p.id, it.id, threshold=0.05)
    high = trainer.get_iteration_performance(p.id, it.id, threshold=0.95)
    assert {t.name for t in low.per_tag_performance} == {"red", "blue"}
    assert 0.0 <= high.recall <= low.recall <= 1.0
    assert low.recall == pytest.approx(1.0)
    images = trainer.get_image_performances(p.id, it.id)
    assert len(images) == trainer.get_image_performance_count(p.id, it.id) == 12
    assert images[0].predictions and images[0].tags


def test_publish_classify_quicktest_query(multiclass, trainer, predictor, service, image_host):
    p, it = multiclass["project"], multiclass["iteration"]
    assert trainer.publish_iteration(p.id, it.id, "colours", service.prediction_resource_id) is True
    assert trainer.get_iteration(p.id, it.id).publish_name == "colours"
    res = predictor.classify_image(p.id, "colours", colour_image(RED, 999), application="tests")
    assert res.predictions[0].tag_name == "red"
    assert [x.probability for x in res.predictions] == sorted((x.probability for x in res.predictions), reverse=True)
    assert res.predictions[0].bounding_box is None and res.project == p.id and res.iteration == it.id
    image_host.files["/blue.jpg"] = colour_image(BLUE, 998)
    by_url = predictor.classify_image_url(p.id, "colours", url=image_host.url("/blue.jpg"))
    assert by_url.predictions[0].tag_name == "blue"
    predictor.classify_image_with_no_store(p.id, "colours", colour_image(BLUE, 997))
    quick = trainer.quick_test_image(p.id, colour_image(RED, 996))
    assert quick.predictions[0].tag_name == "red"
    quick_url = trainer.quick_test_image_url(p.id, url=image_host.url("/blue.jpg"), iteration_id=it.id)
    assert quick_url.predictions[0].tag_name == "blue"

    stored = trainer.query_predictions(p.id, PredictionQueryToken(order_by="Newest"))
    assert [r.id for r in stored.results][0] == quick_url.id
    assert len(stored.results) == 4  # nostore is not kept
    only_app = trainer.query_predictions(p.id, PredictionQueryToken(application="tests"))
    assert [r.id for r in only_app.results] == [res.id]
    red_tag = multiclass["red"].id
    confident_red = trainer.query_predictions(p.id, PredictionQueryToken(
        tags=[PredictionQueryTag(id=red_tag, min_threshold=0.5, max_threshold=1.0)]))
    assert {r.id for r in confident_red.results} == {res.id, quick.id}
    from datetime import datetime, timedelta, timezone
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    assert trainer.query_predictions(p.id, PredictionQueryToken(start_time=later)).results == []
    assert len(trainer.query_predictions(p.id, PredictionQueryToken(end_time=later)).results) == 4
    page = trainer.query_predictions(p.id, PredictionQueryToken(order_by="Oldest", max_count=3))
    assert len(page.results) == 3 and page.token.continuation
    rest = trainer.query_predictions(p.id, page.token)
    assert len(rest.results) == 1 and rest.token.continuation is None
    assert requests.get(stored.results[0].original_image_uri, timeout=10).status_code == 200
    trainer.delete_prediction(p.id, [res.id])
    assert len(trainer.query_predictions(p.id, PredictionQueryToken()).results) == 3


def test_unpublish_then_prediction_fails(multiclass, trainer, predictor, service):
    p, it = multiclass["project"], multiclass["iteration"]
    trainer.publish_iteration(p.id, it.id, "temp", service.prediction_resource_id, overwrite=True)
    trainer.unpublish_iteration(p.id, it.id)
    with pytest.raises(PredictionError) as e:
        predictor.classify_image(p.id, "temp", colour_image(RED, 5))
    assert e.value.error.code == "NotFoundIteration" and e.value.response.status_code == 404
    assert "Invalid iteration" in str(e.value)


# ---- multilabel with a Negative tag ---------------------------------------------------------------------------
def test_multilabel_with_negative_tag(trainer, predictor, service, monkeypatch):
    monkeypatch.setenv("CVLAB_PREDICTOR_BACKEND", "torch")  # skip a second ONNX conversion; same numbers
    project = trainer.create_project("Shapes", classification_type="Multilabel")
    assert project.settings.classification_type == "Multilabel"
    circle = trainer.create_tag(project.id, "circle")
    square = trainer.create_tag(project.id, "square")
    negative = trainer.create_tag(project.id, "Negative", type="Negative")
    assert negative.type == "Negative"
    entries = []
    for i in range(5):
        entries.append(ImageFileCreateEntry(name=f"c{i}", contents=shape_image(True, False, i), tag_ids=[circle.id]))
        entries.append(ImageFileCreateEntry(name=f"s{i}", contents=shape_image(False, True, 10 + i),
                                            tag_ids=[square.id]))
        entries.append(ImageFileCreateEntry(name=f"b{i}", contents=shape_image(True, True, 20 + i),
                                            tag_ids=[circle.id, square.id]))
        entries.append(ImageFileCreateEntry(name=f"n{i}", contents=shape_image(False, False, 30 + i),
                                            tag_ids=[negative.id]))
    entries.append(ImageFileCreateEntry(name="mixed", contents=shape_image(True, False, 99),
                                        tag_ids=[negative.id, circle.id]))
    up = trainer.create_images_from_files(project.id, ImageFileCreateBatch(images=entries))
    assert [i.status for i in up.images].count("OK") == 20
    assert up.images[-1].status == "ErrorNegativeAndRegularTagOnSameImage"
    it = wait_trained(trainer, project.id, trainer.train_project(project.id))
    assert it.status == "Completed" and it.classification_type == "Multilabel"
    trainer.publish_iteration(project.id, it.id, "shapes", service.prediction_resource_id)
    res = predictor.classify_image(project.id, "shapes", shape_image(True, True, 77))
    probs = {x.tag_name: x.probability for x in res.predictions}
    assert set(probs) == {"circle", "square", "Negative"}
    assert {x.tag_type for x in res.predictions if x.tag_name == "Negative"} == {"Negative"}
    perf = trainer.get_iteration_performance(project.id, it.id, threshold=0.5)
    assert {t.name for t in perf.per_tag_performance} >= {"circle", "square"}
    trainer.unpublish_iteration(project.id, it.id)
    trainer.delete_project(project.id)
    with pytest.raises(CustomVisionErrorException) as e:
        trainer.get_project(project.id)
    assert e.value.error.code == "NotFoundProject"


# ---- object detection -----------------------------------------------------------------------------------------
def test_object_detection_flow(trainer, predictor, service, image_host, monkeypatch, tmp_path):
    # Advanced training with a 1-hour budget, where a lab "hour" is 4 s: a cheap, time-bounded detector.
    monkeypatch.setenv("CVLAB_SECONDS_PER_BUDGET_HOUR", "4")
    monkeypatch.setenv("CVLAB_PREDICTOR_BACKEND", "torch")  # the ONNX path is covered by the multiclass flow
    d = domain(trainer, "ObjectDetection", "General (compact)")
    project = trainer.create_project("Parts", domain_id=d.id)
    part = trainer.create_tag(project.id, "part")
    entries = []
    for i in range(15):
        data, (l, t, w, h) = box_image(i)
        entries.append(ImageFileCreateEntry(name=f"p{i}.jpg", contents=data,
                                            regions=[Region(tag_id=part.id, left=l, top=t, width=w, height=h)]))
    up = trainer.create_images_from_files(project.id, ImageFileCreateBatch(images=entries))
    assert up.is_batch_successful and up.images[0].image.regions[0].tag_name == "part"
    it = trainer.train_project(project.id, training_type="Advanced", reserved_budget_in_hours=1)
    assert it.training_type == "Advanced" and it.reserved_budget_in_hours == 1
    with pytest.raises(CustomVisionErrorException) as busy:  # a second train while the first runs
        trainer.train_project(project.id, force_train=True)
    assert busy.value.error.code == "BadRequestTrainingAlreadyInProgress"
    extra, _ = box_image(500)
    during = trainer.create_images_from_data(project.id, extra)  # uploads while training are fine
    assert during.is_batch_successful
    it = wait_trained(trainer, project.id, it)
    assert it.status == "Completed", it.training_error_details
    p50 = trainer.get_iteration_performance(project.id, it.id, threshold=0.5, overlap_threshold=0.5)
    p10 = trainer.get_iteration_performance(project.id, it.id, threshold=0.1, overlap_threshold=0.3)
    assert p50.average_precision is not None and 0.0 <= p50.average_precision <= 1.0
    assert p10.recall >= p50.recall
    trainer.publish_iteration(project.id, it.id, "parts", service.prediction_resource_id)
    data, _ = box_image(321)
    path = tmp_path / "test_image.jpg"
    path.write_bytes(data)
    with open(path, mode="rb") as test_data:  # as the quickstart does: a file object (multipart with filename)
        res = predictor.detect_image(project.id, "parts", test_data)
    assert res.predictions, "a detector answers with boxes"
    box = res.predictions[0].bounding_box
    assert 0.0 <= box.left <= 1.0 and 0.0 < box.width <= 1.0 and res.predictions[0].tag_name == "part"
    image_host.files["/part.jpg"] = data
    by_url = predictor.detect_image_url_with_no_store(project.id, "parts", url=image_host.url("/part.jpg"))
    assert [round(x.probability, 4) for x in by_url.predictions] == [round(x.probability, 4) for x in res.predictions]
    with pytest.raises(PredictionError) as wrong:
        predictor.classify_image(project.id, "parts", data)
    assert wrong.value.error.code == "BadRequestUnsupportedDomain"


# ---- errors the SDK user meets --------------------------------------------------------------------------------
def _client(service, key, kind="training"):
    if kind == "training":
        return CustomVisionTrainingClient(service.training_endpoint, ApiKeyCredentials(in_headers={"Training-key": key}))
    return CustomVisionPredictionClient(service.prediction_endpoint,
                                        ApiKeyCredentials(in_headers={"Prediction-key": key}))


def test_bad_or_swapped_key_is_access_denied(service, multiclass):
    for client in (_client(service, "wrong"), _client(service, service.prediction_key)):
        with pytest.raises(CustomVisionErrorException) as e:
            client.get_projects()
        assert str(e.value) == "Operation returned an invalid status code 'Access Denied'"
        assert e.value.response.status_code == 401
    with pytest.raises(PredictionError) as e:  # a training key cannot predict
        _client(service, service.training_key, "prediction").classify_image(
            multiclass["project"].id, "colours", colour_image(RED, 1))
    assert e.value.response.status_code == 401
    raw = requests.get(f"{service.endpoint}/customvision/v3.3/training/projects", timeout=10)
    assert raw.status_code == 401 and raw.reason == "Access Denied" and raw.json()["error"]["code"] == "401"


def test_unknown_project(trainer, predictor):
    missing = "00000000-1111-2222-3333-444444444444"
    with pytest.raises(CustomVisionErrorException) as e:
        trainer.get_project(missing)
    assert e.value.error.code == "NotFoundProject" and e.value.response.status_code == 404
    with pytest.raises(PredictionError) as e:
        predictor.classify_image(missing, "anything", colour_image(RED, 1))
    assert e.value.error.code == "NotFoundProject"


def test_too_few_images_to_train(trainer):
    project = trainer.create_project("Too few")
    tag = trainer.create_tag(project.id, "only")
    trainer.create_images_from_data(project.id, colour_image(RED, 4242), tag_ids=[tag.id])
    with pytest.raises(CustomVisionErrorException) as e:
        trainer.train_project(project.id)
    assert e.value.error.code.endswith("TrainingValidationFailed") and e.value.response.status_code == 400
    trainer.delete_project(project.id)


def test_prediction_image_too_big_or_corrupt(multiclass, predictor, trainer, service):
    p, it = multiclass["project"], multiclass["iteration"]
    trainer.publish_iteration(p.id, it.id, "colours", service.prediction_resource_id, overwrite=True)
    with pytest.raises(PredictionError) as e:
        predictor.classify_image(p.id, "colours", b"\xff\xd8" + bytes(4 * 1024 * 1024 + 1))
    assert e.value.error.code == "BadRequestImageSizeBytes" and "4 MB" in str(e.value)
    with pytest.raises(PredictionError) as e:
        predictor.classify_image(p.id, "colours", b"GIF89a broken")
    assert e.value.error.code == "BadRequestImageFormat"
    with pytest.raises(PredictionError) as e:
        predictor.classify_image_url(p.id, "colours", url="file:///etc/passwd")
    assert e.value.error.code == "BadRequestImageUrl"


def test_f0_limits_projects_predictions_and_rate(service, trainer, predictor, multiclass, ws):
    p = multiclass["project"]
    limiter = service.app.state.ctx.limiter
    ws.set_tier("F0")
    try:
        while len(trainer.get_projects()) < 2:
            trainer.create_project(f"filler {len(trainer.get_projects())}")
        with pytest.raises(CustomVisionErrorException) as e:
            trainer.create_project("one too many")
        assert e.value.error.code == "BadRequestExceedProjectLimit" and "F0" in str(e.value)

        used = ws.get_usage("predictions")
        ws.add_usage("predictions", 10_000 - used)
        with pytest.raises(PredictionError) as e:
            predictor.classify_image_with_no_store(p.id, "colours", colour_image(RED, 3))
        assert e.value.error.code == "BadRequestExceededQuota"
        ws.add_usage("predictions", -10_000)

        limiter.enabled = True
        statuses = []
        for _ in range(4):  # F0: 2 predictions per second
            r = requests.post(f"{service.endpoint}/customvision/v3.1/prediction/{p.id}/classify/iterations/"
                              f"colours/image/nostore", data=colour_image(RED, 4),
                              headers={"Prediction-Key": service.prediction_key,
                                       "Content-Type": "application/octet-stream"}, timeout=30)
            statuses.append(r.status_code)
        assert statuses[0] == 200 and statuses[-1] == 429
        assert int(r.headers["Retry-After"]) >= 1 and "F0" in r.json()["error"]["message"]
        with pytest.raises(PredictionError) as e:  # the SDK's view of it
            predictor.classify_image_with_no_store(p.id, "colours", colour_image(RED, 4))
        assert e.value.response.status_code == 429
    finally:
        limiter.enabled = False
        ws.set_tier("S0")


# ---- wire details over raw HTTP -------------------------------------------------------------------------------
def _get(service, path, **kw):
    return requests.get(f"{service.endpoint}{path}", headers={"Training-Key": service.training_key}, timeout=10, **kw)


def test_every_version_and_segment_case(service, multiclass):
    pid = multiclass["project"].id
    for version in ("v3.0", "v3.1", "v3.2", "v3.3", "v3.4-preview"):
        for seg in ("training", "Training"):
            r = _get(service, f"/customvision/{version}/{seg}/projects/{pid}")
            assert r.status_code == 200 and r.json()["id"] == pid
    for version, seg in (("v3.0", "Prediction"), ("v3.1", "prediction")):
        r = requests.post(f"{service.endpoint}/customvision/{version}/{seg}/{pid}/classify/iterations/colours/"
                          "image/nostore", data=colour_image(BLUE, 8), timeout=30,
                          headers={"prediction-key": service.prediction_key, "Content-Type": "image/jpeg"})
        assert r.status_code == 200 and r.json()["predictions"][0]["tagName"] == "blue"
    assert requests.post(f"{service.endpoint}/customvision/v3.3/prediction/{pid}/classify/iterations/colours/image",
                         data=b"x", headers={"Prediction-Key": service.prediction_key}, timeout=10).status_code == 404
    old = _get(service, "/customvision/v2.0/training/projects")
    assert old.status_code == 404 and old.json()["code"] == "NotFound"
    r = requests.get(f"{service.endpoint}/customvision/v3.3/training/projects",
                     headers={"Ocp-Apim-Subscription-Key": service.training_key}, timeout=10)
    assert r.status_code == 200


def test_wire_format_dates_and_json_errors(service, multiclass):
    import re
    pid = multiclass["project"].id
    project = _get(service, f"/customvision/v3.3/training/projects/{pid}")
    assert project.headers["content-type"].startswith("application/json")
    body = project.json()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["created"])
    assert body["description"] == "red or blue" and body["settings"]["useNegativeSet"] is True
    unknown = _get(service, "/customvision/v3.3/training/nothing/here")
    assert unknown.status_code == 404 and unknown.json()["code"] == "NotFound"
    invalid = _get(service, f"/customvision/v3.3/training/projects/{pid}/images", params={"take": "lots"})
    assert invalid.status_code == 400 and invalid.json()["code"] == "BadRequestInvalid"
    assert "take" in invalid.json()["message"]
    too_many = _get(service, f"/customvision/v3.3/training/projects/{pid}/images", params={"take": 300})
    assert too_many.status_code == 400 and too_many.json()["message"]
    not_guid = _get(service, "/customvision/v3.3/training/projects/not-a-guid")
    assert not_guid.status_code in (400, 404) and not_guid.json()["code"]
    root = requests.get(service.endpoint, timeout=10).json()
    assert root["training"].endswith("/customvision/v3.4-preview/training")
    assert service.training_key not in str(root) and service.prediction_key not in str(root)
    docs = requests.get(f"{service.endpoint}/docs", timeout=10)
    assert docs.status_code == 200
    spec = requests.get(f"{service.endpoint}/openapi.json", timeout=10).json()
    assert "/customvision/v3.4-preview/training/projects/{projectId}/train" in spec["paths"]
    assert "/customvision/v3.1/prediction/{projectId}/detect/iterations/{publishedName}/url/nostore" in spec["paths"]
    # the image routes are served by plain Starlette routes (prediction_api.fast_routes) but documented in full
    image = spec["paths"]["/customvision/v3.1/prediction/{projectId}/classify/iterations/{publishedName}/image"]
    assert {p["name"] for p in image["post"]["parameters"]} >= {"projectId", "publishedName", "application"}


def test_label_editing_operations(trainer, service, image_host):
    from azure.cognitiveservices.vision.customvision.training.models import (
        ImageRegionCreateEntry, ImageTagCreateEntry)
    d = domain(trainer, "ObjectDetection", "General")
    od = trainer.create_project("Editing OD", domain_id=d.id)
    tag = trainer.create_tag(od.id, "thing", description="a thing")
    tag.name = "widget"
    assert trainer.update_tag(od.id, tag.id, tag).name == "widget"
    image_host.files["/a.jpg"] = box_image(7)[0]
    image_host.files["/b.jpg"] = box_image(8)[0]
    up = trainer.create_images_from_urls(od.id, ImageUrlCreateBatch(images=[
        ImageUrlCreateEntry(url=image_host.url("/a.jpg")), ImageUrlCreateEntry(url=image_host.url("/b.jpg")),
        ImageUrlCreateEntry(url=image_host.url("/missing.jpg"))]))
    assert [i.status for i in up.images] == ["OK", "OK", "ErrorSource"]
    a, b = up.images[0].image, up.images[1].image
    assert trainer.get_untagged_image_count(od.id) == 2
    made = trainer.create_image_regions(od.id, [ImageRegionCreateEntry(image_id=a.id, tag_id=tag.id, left=0.1,
                                                                      top=0.1, width=0.3, height=0.3)])
    assert len(made.created) == 1 and made.created[0].tag_name == "widget"
    assert trainer.get_tagged_image_count(od.id) == 1
    trainer.delete_image_regions(od.id, [made.created[0].region_id])
    assert trainer.get_tagged_image_count(od.id) == 0
    meta = trainer.update_image_metadata(od.id, [b.id], {"camera": "left"})
    assert meta.is_batch_successful and meta.images[0].metadata == {"camera": "left"}
    assert trainer.get_images_by_ids(od.id, [b.id])[0].metadata == {"camera": "left"}
    assert [i.id for i in trainer.get_images(od.id, filter="camera eq 'left'")] == [b.id]
    assert trainer.get_image_count(od.id, filter="camera ne 'left'") == 1
    proposals = trainer.get_image_region_proposals(od.id, a.id)
    assert proposals.image_id == a.id and proposals.proposals == []
    trainer.delete_images(od.id, [b.id])
    assert trainer.get_image_count(od.id) == 1
    trainer.delete_images(od.id, all_images=True, all_iterations=True)
    assert trainer.get_image_count(od.id) == 0
    trainer.delete_tag(od.id, tag.id)
    assert trainer.get_tags(od.id) == []

    cls = trainer.create_project("Editing CLS", classification_type="Multilabel")
    t1, t2 = trainer.create_tag(cls.id, "one"), trainer.create_tag(cls.id, "two")
    raw = requests.post(f"{service.endpoint}/customvision/v3.3/training/projects/{cls.id}/images",
                        params={"tagIds": t1.id}, data=colour_image(RED, 55),
                        headers={"Training-Key": service.training_key, "Content-Type": "application/octet-stream"},
                        timeout=10)
    assert raw.status_code == 200 and raw.json()["images"][0]["status"] == "OK"
    image_id = raw.json()["images"][0]["image"]["id"]
    made = trainer.create_image_tags(cls.id, [ImageTagCreateEntry(image_id=image_id, tag_id=t2.id),
                                              ImageTagCreateEntry(image_id=image_id, tag_id=t1.id)])
    assert len(made.created) == 1 and len(made.duplicated) == 1
    trainer.delete_image_tags(cls.id, [image_id], [t1.id, t2.id])
    assert trainer.get_untagged_image_count(cls.id) == 1
    p = trainer.get_project(cls.id)
    p.name, p.description = "Renamed", "round trip as in the docs"
    assert trainer.update_project(cls.id, p).name == "Renamed"
    for pid in (od.id, cls.id):
        trainer.delete_project(pid)


def test_export_onnx_and_download(multiclass, trainer):
    import zipfile
    p, it = multiclass["project"], multiclass["iteration"]
    started = trainer.export_iteration(p.id, it.id, "ONNX")
    assert started.platform == "ONNX" and started.status in ("Exporting", "Done")
    deadline = time.monotonic() + 120
    while True:
        exports = [e for e in trainer.get_exports(p.id, it.id) if e.platform == "ONNX"]
        if exports and exports[0].status != "Exporting":
            break
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert exports[0].status == "Done", exports
    z = requests.get(exports[0].download_uri, timeout=30)
    assert z.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(z.content)).namelist()
    assert "labels.txt" in names and any(n.endswith(".onnx") for n in names)
    with pytest.raises(CustomVisionErrorException) as e:
        trainer.export_iteration(p.id, it.id, "ONNX", flavor="TensorFlowLite")
    assert e.value.error.code.startswith("BadRequest")


def test_suggestions_for_untagged_images(multiclass, trainer):
    from azure.cognitiveservices.vision.customvision.training.models import SuggestedTagAndRegionQueryToken
    p, it = multiclass["project"], multiclass["iteration"]
    red_img = trainer.create_images_from_data(p.id, colour_image(RED, 31337)).images[0].image
    blue_img = trainer.create_images_from_data(p.id, colour_image(BLUE, 31338)).images[0].image
    found = trainer.suggest_tags_and_regions(p.id, it.id, [red_img.id])
    assert found[0].id == red_img.id and found[0].predictions[0].tag_name == "red"
    assert 0.0 <= found[0].prediction_uncertainty < 0.5
    red_id = multiclass["red"].id
    query = trainer.query_suggested_images(p.id, it.id, SuggestedTagAndRegionQueryToken(
        tag_ids=[red_id], threshold=0.5, sort_by="UncertaintyAscending"))
    assert [r.id for r in query.results] == [red_img.id] and query.results[0].original_image_uri
    counts = trainer.query_suggested_image_count(p.id, it.id, tag_ids=[red_id, multiclass["blue"].id],
                                                 threshold=0.5)
    assert counts == {red_id: 1, multiclass["blue"].id: 1}
    trainer.delete_images(p.id, [red_img.id, blue_img.id])


def test_stored_prediction_becomes_training_image(multiclass, trainer):
    from azure.cognitiveservices.vision.customvision.training.models import ImageIdCreateBatch, ImageIdCreateEntry
    p = multiclass["project"]
    quick = trainer.quick_test_image(p.id, colour_image(RED, 4444))
    ranked = trainer.query_predictions(p.id, PredictionQueryToken(order_by="Suggested", max_count=50))
    assert quick.id in [r.id for r in ranked.results]
    made = trainer.create_images_from_predictions(p.id, ImageIdCreateBatch(images=[
        ImageIdCreateEntry(id=quick.id, tag_ids=[multiclass["red"].id])]))
    assert made.is_batch_successful and made.images[0].image.tags[0].tag_name == "red"
    trainer.delete_images(p.id, [made.images[0].image.id])


def test_project_export_import_and_artifacts(multiclass, trainer):
    p, it = multiclass["project"], multiclass["iteration"]
    exported = trainer.export_project(p.id)
    assert exported.image_count == 12 and exported.tag_count == 2 and exported.iteration_count == 1
    copy = trainer.import_project(exported.token, name="Colours copy")
    assert copy.id != p.id and copy.settings.domain_id == p.settings.domain_id
    assert trainer.get_tagged_image_count(copy.id) == 12
    assert sorted(t.name for t in trainer.get_tags(copy.id)) == ["blue", "red"]
    with pytest.raises(CustomVisionErrorException) as e:
        trainer.import_project(exported.token[:-2] + "xx", name="forged")
    assert e.value.error.code == "BadRequestInvalidImportToken"
    trainer.delete_project(copy.id)
    chunks = trainer.get_artifact(p.id, f"iterations/{it.id}/evaluation.json")
    assert b'"records"' in b"".join(chunks)

"""Microsoft Learn's two Custom Vision labs, done in the portal alone (plus the SDK steps the labs do in code), on the
labs' own photos (data/mslearn-fruit), in headless Chromium against a real server on 127.0.0.1. Every control is
found by its accessible name, as a lab's instructions (or a screen reader) name it; screenshots of each step go to
test-artifacts/portal/.

Lab sources: MicrosoftLearning/mslearn-ai-vision, Instructions/Labs/05-custom-vision-object-detection.md and
04-image-classification.md (https://microsoftlearning.github.io/mslearn-ai-vision/).
"""
from __future__ import annotations

import hashlib
import json
import re
import tempfile
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from playwright.sync_api import expect  # waits for the element, unlike is_visible()

from test_portal_support import (FRUIT, FRUIT_BOXES, Portal, browser_session, close_to, drag_box, file_server,
                                 sdk_predictor, sdk_trainer, waits_on_429)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1500)]
DETECTION_EPOCHS = "8"  # CVLAB_DETECTION_EPOCHS: a short Quick training, so the lab runs in minutes on 2 cores


@pytest.fixture(scope="module")
def browser():
    with browser_session() as b:
        yield b


@pytest.fixture
def server(tmp_path, monkeypatch):
    import cvlab
    from cvlab.service.server import start_background
    monkeypatch.setenv("CVLAB_DETECTION_EPOCHS", DETECTION_EPOCHS)
    monkeypatch.setenv("CVLAB_ALLOW_PRIVATE_URLS", "1")  # the lab's Image URL is a photo served on 127.0.0.1
    ws = cvlab.Workspace(tmp_path / "ws")
    handle = start_background(ws)
    yield handle
    handle.stop()
    ws.close()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _shown_file(page, by_digest: dict[str, str]) -> str:
    """Which lab photo the Image Detail shows: its original bytes, fetched from the signed URL, by hash."""
    src = page.locator(".cvr-img").get_attribute("src")
    original = re.sub(r"/(resized|thumbnail)\?", "/original?", src)
    return by_digest[_digest(requests.get(original, timeout=30).content)]


def test_detection_lab_in_the_portal(browser, server):
    """05-custom-vision-object-detection: create "Detect Fruit" (Object Detection, General), upload
    training-images/, draw a region round every fruit with mouse drags and tag it, add tagged-images.json through
    the SDK, Train (Quick Training), read mAP, Quick Test produce.jpg, Publish as fruit-detector, copy the
    Prediction URL and call it (raw HTTP and the SDK)."""
    portal = Portal(browser, server, "detection-lab")
    page = portal.open(server.training_key)
    trainer = sdk_trainer(server)

    # Create a new project: Name, Description, Resource, Project Types: Object Detection, Domains: General.
    _create_project(portal, "Detect Fruit", "Object detection for fruit.", "Object Detection", "General")
    project = next(p for p in trainer.get_projects() if p.name == "Detect Fruit")
    domain = trainer.get_domain(project.settings.domain_id)
    assert (domain.type, domain.name) == ("ObjectDetection", "General")
    assert project.description == "Object detection for fruit."

    # Select Add images and upload all of the images in the folder.
    photos = sorted((FRUIT / "detection" / "training-images").glob("*.jpg"))
    by_digest = {_digest(p.read_bytes()): p.name for p in photos}
    _upload(page, photos, shot=portal.shot)
    assert trainer.get_image_count(project.id) == len(photos)

    # Select the first image; drag round each object to create a region, add its tag; ">" for the next image.
    page.get_by_role("button", name=re.compile(r"^Image 1\b")).click()
    detail = page.get_by_role("dialog", name="Image Detail")
    seen, previous = [], None
    for n in range(len(photos)):
        image = detail.locator(".cvr-img")
        page.wait_for_function("(before) => { const i = document.querySelector('.cvr-img');"
                               " return i && i.complete && i.naturalWidth > 0 && i.getAttribute('src') !== before; }",
                               arg=previous)
        previous = image.get_attribute("src")
        name = _shown_file(page, by_digest)
        seen.append(name)
        for tag, *box in FRUIT_BOXES[name]:
            drag_box(page, image, box)
            picker = detail.get_by_label("Tag name")
            picker.fill(tag)
            picker.press("Enter")
            detail.locator(".cvr-region:not(.cvr-pending)", has_text=tag).last.wait_for()
        if n == 0:
            portal.shot("regions drawn and tagged")
        if n < len(photos) - 1:
            detail.get_by_role("button", name="Next image").click()
    detail.get_by_role("button", name="Done").click()
    detail.wait_for(state="hidden")
    assert sorted(seen) == sorted(p.name for p in photos)

    # Every fruit has its region, where it was drawn (read back through the SDK).
    tags = {t.name: t.id for t in trainer.get_tags(project.id)}
    assert set(tags) == {"apple", "banana", "orange"}
    stored = {}
    for im in trainer.get_tagged_images(project.id, take=50):
        name = by_digest[_digest(requests.get(im.original_image_uri, timeout=30).content)]
        stored[name] = sorted((r.tag_name, r.left, r.top, r.width, r.height) for r in im.regions)
    assert set(stored) == set(FRUIT_BOXES)
    for name, boxes in FRUIT_BOXES.items():
        got, want = stored[name], sorted(boxes)
        assert len(got) == len(want), name
        for g, w in zip(got, want):
            assert g[0] == w[0] and close_to(g[1:], w[1:]), (name, g, w)

    # Under Tags, select Tagged to see all of your tagged images.
    page.get_by_role("button", name="Tagged", exact=True).click()
    page.get_by_role("button", name=re.compile(r"^Image 10\b")).wait_for()
    portal.shot("tagged images")

    # The settings icon at the top right: Project Id under General, Key and Endpoint under Resources.
    page.get_by_role("link", name="Project Settings").click()
    project_id = page.get_by_role("textbox", name="Project Id", exact=True).input_value()
    key = page.get_by_label("Key", exact=True).input_value()
    endpoint = page.get_by_label("Endpoint", exact=True).input_value()
    assert (project_id, key, endpoint) == (project.id, server.training_key, server.endpoint)
    portal.shot("project settings")

    # add-tagged-images.py: upload tagged-images.json's images with their regions through the SDK.
    _add_tagged_images(endpoint, key, project_id)
    page.get_by_role("link", name="Training Images").click()
    page.get_by_role("button", name="Tagged", exact=True).wait_for()
    assert trainer.get_tagged_image_count(project.id) == len(photos) + 23

    # Train > Quick Training; wait; review Precision, Recall and mAP.
    page.get_by_role("button", name="Train", exact=True).click()
    train = page.get_by_role("dialog", name="Choose Training Type")
    assert train.get_by_role("radio", name="Quick Training").is_checked()
    portal.shot("train dialog")
    train.get_by_role("button", name="Train", exact=True).click()
    page.get_by_label("Training progress").wait_for()
    portal.shot("training")
    gauge = page.get_by_role("group", name=re.compile(r"^mAP "))
    gauge.wait_for(timeout=900_000)
    portal.shot("performance")
    iteration = trainer.get_iterations(project.id)[0]
    assert iteration.status == "Completed"
    perf = trainer.get_iteration_performance(project.id, iteration.id, threshold=0.5, overlap_threshold=0.5)
    assert gauge.get_attribute("aria-label") == f"mAP {perf.average_precision * 100:.1f}%"
    assert page.get_by_role("group", name=re.compile(r"^Precision ")).get_attribute("aria-label") == \
        f"Precision {perf.precision * 100:.1f}%"

    # Quick Test produce.jpg (the lab tests https://aka.ms/test-fruit; offline, the same photo from disk).
    page.get_by_role("button", name="Quick Test").click()
    quick = page.get_by_role("dialog", name="Quick Test")
    with page.expect_file_chooser() as chooser:
        quick.get_by_role("button", name="Browse local files").click()
    chooser.value.set_files(str(FRUIT / "detection" / "produce.jpg"))
    table = quick.get_by_role("table", name="Predictions")
    table.get_by_role("row").nth(1).wait_for(timeout=120_000)
    portal.shot("quick test")
    found = set(table.get_by_role("cell").all_inner_texts())
    assert found & {"apple", "banana", "orange"}, found
    rows_at_50 = table.get_by_role("row").count()
    quick.get_by_role("slider", name="Predicted Object Threshold").fill("90")
    assert table.get_by_role("row").count() <= rows_at_50
    quick.get_by_role("button", name="Close").click()

    # Publish: Model name fruit-detector, the prediction resource.
    page.get_by_role("button", name="Publish", exact=True).click()
    publish = page.get_by_role("dialog", name="Publish Model")
    publish.get_by_label("Model name").fill("fruit-detector")
    assert publish.get_by_label("Prediction resource").input_value() == server.prediction_resource_id
    publish.get_by_role("button", name="Publish", exact=True).click()
    page.get_by_role("complementary", name="Iterations").get_by_text("Published").wait_for()
    assert trainer.get_iteration(project.id, iteration.id).publish_name == "fruit-detector"

    # Prediction URL: the URL for an image file and its Prediction-Key header; call it, then with the SDK.
    page.get_by_role("button", name="Prediction URL").click()
    how = page.get_by_role("dialog", name="How to use the Prediction API")
    url = how.get_by_label("Prediction URL for an image file", exact=True).input_value()
    prediction_key = how.locator("code.key").first.inner_text()
    portal.shot("prediction url")
    assert prediction_key == server.prediction_key
    photo = (FRUIT / "detection" / "produce.jpg").read_bytes()
    raw = requests.post(url, headers={"Prediction-Key": prediction_key, "Content-Type": "application/octet-stream"},
                        data=photo, timeout=120)
    assert raw.status_code == 200, raw.text
    parsed = urlparse(url)
    parts = parsed.path.split("/")  # /customvision/v3.0/Prediction/<project>/detect/iterations/<name>/image
    assert parts == ["", "customvision", "v3.0", "Prediction", project.id, "detect", "iterations", "fruit-detector",
                     "image"]
    pid, name = parts[4], parts[7]
    result = sdk_predictor(f"{parsed.scheme}://{parsed.netloc}", prediction_key).detect_image(pid, name, photo)
    best = {p.tag_name for p in result.predictions if p.probability >= 0.5}
    assert best & {"apple", "banana", "orange"}, [(p.tag_name, p.probability) for p in result.predictions[:5]]
    assert [p.tag_name for p in result.predictions] == [p["tagName"] for p in raw.json()["predictions"]]
    how.get_by_role("button", name="Close").click()

    # Beyond the lab: the quick-tested produce.jpg is in Predictions; open it, keep its boxes, Save and close.
    before = trainer.get_image_count(project.id)
    page.get_by_role("link", name="Predictions").click()
    page.get_by_role("button", name=re.compile(r"^Prediction 1: ")).click()
    prediction = page.get_by_role("dialog", name="Prediction")
    prediction.locator(".cvr-img").wait_for()
    prediction.locator(".cvr-region").first.wait_for()  # the stored prediction's boxes, drawn with the image
    kept = prediction.locator(".cvr-region").count()
    assert kept >= 1
    portal.shot("prediction detail")
    prediction.get_by_role("button", name="Save and close").click()
    page.get_by_text("Added to Training Images").wait_for()
    assert trainer.get_image_count(project.id) == before + 1
    added = [im for im in trainer.get_tagged_images(project.id, take=100)
             if _digest(requests.get(im.original_image_uri, timeout=30).content) == _digest(photo)]
    assert len(added) == 1 and len(added[0].regions) == kept

    # An untagged photo: resting the pointer on an object shows the region the latest iteration detects there;
    # then the smart labeler suggests its regions, confirmed image by image.
    page.get_by_role("link", name="Training Images").click()
    _upload(page, [FRUIT / "detection" / "IMG_TEST_OBJECTS.jpg"])
    untagged = trainer.get_untagged_images(project.id)[0]
    proposals = trainer.get_image_region_proposals(project.id, untagged.id).proposals
    best = max(proposals, key=lambda p: p.confidence)
    assert best.confidence >= 0.3
    page.get_by_role("button", name="Untagged", exact=True).click()
    page.wait_for_function("() => document.querySelectorAll('.grid .thumb').length === 1")
    page.get_by_role("button", name="Image 1, untagged").click()  # the untagged photo's tile
    detail = page.get_by_role("dialog", name="Image Detail")
    detail.get_by_text("Image 1 of 1").wait_for()
    image = detail.locator(".cvr-img")
    page.wait_for_function("() => { const i = document.querySelector('.cvr-img'); return i && i.complete && i.naturalWidth; }")
    page.wait_for_function("() => document.querySelectorAll('.cvr-suggestion').length > 0")
    r = image.bounding_box()
    b = best.bounding_box
    page.mouse.move(r["x"] + (b.left + b.width / 2) * r["width"], r["y"] + (b.top + b.height / 2) * r["height"])
    detail.locator(".cvr-suggestion.cvr-shown").wait_for()
    portal.shot("automatically detected region")
    detail.get_by_role("button", name="Done").click()
    page.get_by_role("button", name="Get suggested tags").click()
    page.get_by_role("dialog", name="Get suggested tags").get_by_role("button", name="Get suggested tags").click()
    page.get_by_role("button", name=re.compile(r"^Suggestion 1:")).click()
    detail = page.get_by_role("dialog", name="Image Detail")
    detail.locator(".cvr-img").wait_for()
    detail.locator(".cvr-suggestion.cvr-shown").first.wait_for()  # drawn with the image's suggestions, all at once
    offered = detail.locator(".cvr-suggestion.cvr-shown").count()
    portal.shot("smart labeler suggestions")
    detail.get_by_role("button", name="Confirm").click()
    page.get_by_text("Suggested regions confirmed").wait_for()
    detail.get_by_role("button", name="Done").click()
    labelled = trainer.get_images_by_ids(project.id, [untagged.id])[0]
    assert len(labelled.regions or []) == offered

    # Back in the gallery, the settings icon shows the prediction resource's key and endpoint.
    page.get_by_role("link", name="Projects Gallery").click()
    page.get_by_role("button", name="Settings").click()
    resource = page.get_by_role("dialog", name="Settings").get_by_role("region", name="cvlab-Prediction")
    assert resource.get_by_label("Key", exact=True).input_value() == server.prediction_key
    assert resource.get_by_label("Endpoint", exact=True).input_value() == server.endpoint
    portal.shot("gallery settings")
    portal.assert_no_errors()
    portal.close()


def _add_tagged_images(endpoint: str, key: str, project_id: str) -> None:
    """What the lab's add-tagged-images.py does: tags by name, regions from tagged-images.json, one batch."""
    from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
    from azure.cognitiveservices.vision.customvision.training.models import (ImageFileCreateBatch,
                                                                             ImageFileCreateEntry, Region)
    from msrest.authentication import ApiKeyCredentials
    # the portal polls with the same key, so together they can pass the tier's rate limit: wait on 429 as for
    # the test's other SDK clients (the lab's script would meet the same 429 on Azure)
    trainer = waits_on_429(CustomVisionTrainingClient(endpoint, ApiKeyCredentials(in_headers={"Training-key": key})))
    tags = {t.name: t for t in trainer.get_tags(project_id)}
    folder = FRUIT / "detection" / "tagged-images"
    entries = []
    for image in json.loads((folder / "tagged-images.json").read_text())["files"]:
        regions = [Region(tag_id=tags[t["tag"]].id, left=t["left"], top=t["top"], width=t["width"],
                          height=t["height"]) for t in image["tags"]]
        entries.append(ImageFileCreateEntry(name=image["filename"], contents=(folder / image["filename"]).read_bytes(),
                                            regions=regions))
    result = trainer.create_images_from_files(project_id, ImageFileCreateBatch(images=entries))
    assert result.is_batch_successful, [i.status for i in result.images]


def _create_project(portal, name, description, project_type, domain, classification_type=None):
    page = portal.page
    page.get_by_role("button", name="New Project").click()
    dialog = page.get_by_role("dialog", name="Create new project")
    dialog.get_by_label("Name").fill(name)
    dialog.get_by_label("Description").fill(description)
    dialog.get_by_role("radio", name=project_type, exact=True).check()
    if classification_type:
        dialog.get_by_role("radio", name=classification_type).check()
    dialog.get_by_role("radio", name=domain, exact=True).check()
    portal.shot("create project")
    dialog.get_by_role("button", name="Create project").click()
    page.get_by_role("heading", name=name).wait_for()


def _upload(page, files, tag: str | None = None, shot=None):
    """Add images > Browse local files > (My Tags) > Upload N files > Done."""
    page.get_by_role("button", name="Add images").click()
    upload = page.get_by_role("dialog", name="Image upload")
    with page.expect_file_chooser() as chooser:
        upload.get_by_role("button", name="Browse local files").click()
    chooser.value.set_files([str(p) for p in files])
    if tag:
        upload.get_by_label("My Tags").fill(tag)
    if shot:
        shot("upload dialog")
    n = len(files)
    upload.get_by_role("button", name=f"Upload {n} file{'s' if n > 1 else ''}").click()
    upload.get_by_text(f"{n} image{'s' if n > 1 else ''} uploaded successfully").wait_for()
    upload.get_by_role("button", name="Done").click()
    upload.wait_for(state="hidden")


def _quick_test_top_tag(quick, page) -> str:
    table = quick.get_by_role("table", name="Predictions")
    table.get_by_role("row").nth(1).wait_for(timeout=120_000)
    return table.get_by_role("row").nth(1).get_by_role("cell").first.inner_text()


def test_classification_lab_in_the_portal(browser, server):
    """04-image-classification: create "Classify Fruit" (Classification, Multiclass, Food), upload each folder with
    its tag in My Tags, Quick Training, Precision / Recall / AP, Quick Test the three test photos (an Image URL and
    local files), Project Id, Publish as fruit-classifier and call it with the SDK as test-classifier.py does;
    then export ONNX: refused on Food (not compact), so Project Settings switches to Food (compact), Train again,
    Export ONNX, Download the zip."""
    portal = Portal(browser, server, "classification-lab")
    page = portal.open(server.training_key)
    trainer = sdk_trainer(server)

    _create_project(portal, "Classify Fruit", "Image classification for fruit", "Classification", "Food",
                    "Multiclass (Single tag per image)")
    project = next(p for p in trainer.get_projects() if p.name == "Classify Fruit")
    assert project.settings.classification_type == "Multiclass"
    assert trainer.get_domain(project.settings.domain_id).name == "Food"

    # Add images: each folder, with its tag in My Tags.
    folders = FRUIT / "classification" / "training-images"
    for tag in ("apple", "banana", "orange"):
        _upload(page, sorted((folders / tag).glob("*.jpg")), tag)
    tags = page.get_by_role("complementary", name="Filters")
    for tag in ("apple", "banana", "orange"):
        expect(tags.get_by_role("checkbox", name=tag, exact=True)).to_be_visible(timeout=30_000)
    counts = {t.name: t.image_count for t in trainer.get_tags(project.id)}
    assert counts == {"apple": 15, "banana": 15, "orange": 15}
    page.get_by_role("button", name="Tagged", exact=True).click()
    portal.shot("45 tagged images")

    # Train > Quick Training; review Precision, Recall and AP at the 50 % threshold.
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_role("dialog", name="Choose Training Type").get_by_role("button", name="Train", exact=True).click()
    gauge = page.get_by_role("group", name=re.compile(r"^AP "))
    gauge.wait_for(timeout=600_000)
    portal.shot("performance")
    first = trainer.get_iterations(project.id)[0]
    perf = trainer.get_iteration_performance(project.id, first.id, threshold=0.5)
    for label, value in (("Precision", perf.precision), ("Recall", perf.recall), ("AP", perf.average_precision)):
        group = page.get_by_role("group", name=re.compile(rf"^{label} \d"))
        assert group.get_attribute("aria-label") == f"{label} {value * 100:.1f}%"

    # Quick Test: the lab's https://aka.ms/test-apple becomes the same photo served on 127.0.0.1 (no internet here).
    tests = FRUIT / "classification" / "test-images"
    page.get_by_role("button", name="Quick Test").click()
    quick = page.get_by_role("dialog", name="Quick Test")
    with file_server(tests) as base:
        quick.get_by_role("textbox", name="Image URL").fill(f"{base}/IMG_TEST_1.jpg")
        quick.get_by_role("button", name="Quick test image URL").click()
        assert _quick_test_top_tag(quick, page) == "apple"
    portal.shot("quick test apple")
    for photo, want in (("IMG_TEST_2.jpg", "banana"), ("IMG_TEST_3.jpg", "orange")):
        with page.expect_file_chooser() as chooser:
            quick.get_by_role("button", name="Browse local files").click()
        chooser.value.set_files(str(tests / photo))
        quick.get_by_text("Predicting…").wait_for(state="hidden")
        assert _quick_test_top_tag(quick, page) == want
    quick.get_by_role("button", name="Close").click()
    stored = trainer.query_predictions(project.id, {"orderBy": "Newest", "maxCount": 10})
    assert len(stored.results) == 3  # quick-tested images land in Predictions

    # Publish: Model name fruit-classifier, the prediction resource; test-classifier.py calls it.
    page.get_by_role("button", name="Publish", exact=True).click()
    publish = page.get_by_role("dialog", name="Publish Model")
    publish.get_by_label("Model name").fill("fruit-classifier")
    publish.get_by_role("button", name="Publish", exact=True).click()
    page.get_by_role("complementary", name="Iterations").get_by_text("Published").wait_for()
    predictor = sdk_predictor(server.endpoint, server.prediction_key)
    for photo, want in (("IMG_TEST_1.jpg", "apple"), ("IMG_TEST_2.jpg", "banana"), ("IMG_TEST_3.jpg", "orange")):
        result = predictor.classify_image(project.id, "fruit-classifier", (tests / photo).read_bytes())
        assert result.predictions[0].tag_name == want and result.predictions[0].probability > 0.5

    # Export ONNX: Food is not a compact domain, so Azure's rule refuses it with its message.
    page.get_by_role("button", name="Export").click()
    export = page.get_by_role("dialog", name="Choose your platform")
    export.get_by_role("button", name=re.compile(r"^ONNX")).click()
    export.get_by_role("button", name="Export", exact=True).click()
    refusal = export.get_by_role("alert").filter(has_text="non-compact domain")
    refusal.wait_for()
    assert "BadRequestExportValidationFailed" in refusal.inner_text()
    portal.shot("export refused")
    export.get_by_role("button", name="Close").click()

    # Project Settings: Domains > Food (compact), Save Changes; Train again; Export ONNX; Download.
    page.get_by_role("link", name="Project Settings").click()
    page.get_by_role("radio", name="Food (compact)").check()
    page.get_by_role("button", name="Save Changes").click()
    page.get_by_text("Project settings saved").wait_for()
    assert trainer.get_domain(trainer.get_project(project.id).settings.domain_id).name == "Food (compact)"
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_role("dialog", name="Choose Training Type").get_by_role("button", name="Train", exact=True).click()
    page.get_by_role("button", name=re.compile(r"^Iteration 2")).wait_for()
    page.get_by_role("group", name=re.compile(r"^AP ")).wait_for(timeout=600_000)
    page.get_by_role("button", name="Export").click()
    export = page.get_by_role("dialog", name="Choose your platform")
    export.get_by_role("button", name=re.compile(r"^ONNX")).click()
    export.get_by_role("button", name="Export", exact=True).click()
    download = export.get_by_role("link", name="Download")
    download.wait_for(timeout=600_000)
    portal.shot("export done")
    with page.expect_download() as dl:
        download.click()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.zip"
        dl.value.save_as(path)
        names = zipfile.ZipFile(path).namelist()
    assert any(n.endswith(".onnx") for n in names), names
    portal.assert_no_errors()
    portal.close()

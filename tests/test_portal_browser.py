"""The portal's screens in headless Chromium against a real server on 127.0.0.1: sign-in, the red frames of
mispredicted images, the threshold sliders (the numbers are get_iteration_performance's at the same thresholds),
the smart labeler, Predictions > Save and close, Delete refused while published, Export refused on a non-compact
domain, Project Settings changes, keyboard labeling, uploads that go on when the learner leaves, the notification
e-mail, 200 % zoom, and names typed by users rendered as text, never HTML. The small projects of colour swatches
train in seconds; screenshots go to test-artifacts/portal/."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect  # waits for the element, unlike is_visible()

import cvlab
from cvlab.service.server import start_background

from test_portal_support import (XSS, Portal, browser_session, colours_project, sdk_trainer, wait_iteration)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """One server and one browser for the module; `trained` is a colour-swatch project with a Quick iteration."""
    from cvlab.training import train_project
    mp = pytest.MonkeyPatch()
    mp.setenv("CVLAB_SECONDS_PER_BUDGET_HOUR", "4")  # an Advanced training of 1 budget hour takes seconds
    mp.setenv("CVLAB_DETECTION_EPOCHS", "2")
    ws = cvlab.Workspace(tmp_path_factory.mktemp("portal") / "ws")
    info = colours_project(ws, "colours")
    it = train_project(ws, info["project"].id, show_progress=False)
    assert it.status == "Completed", it.training_error_details
    info["iteration"] = it
    with start_background(ws) as handle, browser_session() as browser:
        yield {"ws": ws, "handle": handle, "browser": browser, "trained": info}
    ws.close()
    mp.undo()


@pytest.fixture
def portal(env, request):
    p = Portal(env["browser"], env["handle"], request.node.name.removeprefix("test_"))
    yield p
    p.close()


def _pct(value) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _open_new_project(env, portal, name: str, tab: str = "images", **kw):
    """A fresh colour-swatch project (``colours_project``) opened on `tab`: (project id, SDK trainer, page)."""
    pid = colours_project(env["ws"], name, **kw)["project"].id
    return pid, sdk_trainer(env["handle"]), portal.open(env["handle"].training_key, f"#/projects/{pid}/{tab}")


def _wait_gauge(page, label: str, value) -> None:
    """Wait until the gauge `label` shows `value` (a fraction or None) as the portal writes it."""
    page.wait_for_function("([l, w]) => [...document.querySelectorAll('.gauge')].some("
                           "(g) => g.getAttribute('aria-label') === `${l} ${w}`)", arg=[label, _pct(value)])


def test_sign_in_refuses_a_wrong_key_and_sends_an_expired_session_back(env, portal):
    handle = env["handle"]
    page = portal.open()
    page.get_by_label("Training key").fill(handle.prediction_key)  # a prediction key cannot train, nor sign in
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="was refused").wait_for()
    portal.shot("refused")
    portal.sign_in(handle.training_key)
    html = page.content()
    assert handle.training_key not in page.url and handle.training_key not in html
    assert handle.prediction_key not in html
    # The key the tab holds stops being accepted (a server restarted with other keys, or renewed seat keys).
    page.evaluate("() => sessionStorage.setItem('cvlab.portal.trainingKey', 'no-longer-valid')")
    page.get_by_role("link", name="colours", exact=True).click()
    page.get_by_role("alert").filter(has_text="Your session has ended").wait_for()
    page.get_by_label("Training key").wait_for()
    portal.shot("session ended")
    assert page.evaluate("() => sessionStorage.getItem('cvlab.portal.trainingKey')") is None
    portal.sign_in(handle.training_key)
    page.get_by_role("heading", name="colours", exact=True).wait_for()  # back where the learner was
    portal.assert_no_errors()


def test_an_iteration_frames_the_images_it_mispredicted_in_red(env, portal):
    """The same images, computed independently from get_image_performances: the top tag at 50 % is not the truth."""
    t = env["trained"]
    pid, iid = t["project"].id, t["iteration"].id
    trainer = sdk_trainer(env["handle"])
    wrong = set()
    for perf in trainer.get_image_performances(pid, iid, take=256):
        truth = {x.tag_id for x in perf.tags}
        top = max(perf.predictions, key=lambda p: p.probability)
        predicted = {top.tag_id} if top.probability >= 0.5 else set()
        if predicted != truth:
            wrong.add(perf.id)
    assert set(t["mislabelled"]) <= wrong
    page = portal.open(env["handle"].training_key, f"#/projects/{pid}/images")
    page.get_by_role("button", name="Tagged", exact=True).click()
    assert page.locator(".thumb.mispredicted").count() == 0
    page.get_by_label("Iteration").select_option(label=t["iteration"].name)
    page.get_by_text("mispredicted the image").wait_for()
    framed = page.locator(".thumb.mispredicted img")
    expect(framed).to_have_count(len(wrong))  # waits: the gallery may still be drawing when the caption shows
    ids = {re.search(r"/blobs/images/[^/]+/([^/]+)/", framed.nth(i).get_attribute("src")).group(1)
           for i in range(framed.count())}
    assert ids == wrong
    expect(page.get_by_role("button", name=re.compile(r"mispredicted$"))).to_have_count(len(wrong))
    portal.shot("red frames")
    portal.assert_no_errors()


def test_threshold_sliders_match_get_iteration_performance(env, portal):
    t = env["trained"]
    pid, iid = t["project"].id, t["iteration"].id
    trainer = sdk_trainer(env["handle"])
    page = portal.open(env["handle"].training_key, f"#/projects/{pid}/performance")
    slider = page.get_by_role("slider", name="Probability Threshold")
    for value in (50, 12, 88):
        slider.fill(str(value))
        perf = trainer.get_iteration_performance(pid, iid, threshold=value / 100)
        want = {"Precision": perf.precision, "Recall": perf.recall, "AP": perf.average_precision}
        for label, v in want.items():
            _wait_gauge(page, label, v)
        table = page.locator("table.per-tag tbody tr")
        for k, tag in enumerate(perf.per_tag_performance):
            cells = table.nth(k).locator("td").all_inner_texts()
            assert table.nth(k).locator("th").inner_text() == tag.name
            assert cells[:3] == [_pct(tag.precision), _pct(tag.recall), _pct(tag.average_precision)]
    portal.shot("threshold 88")
    portal.assert_no_errors()


@pytest.mark.slow
def test_overlap_threshold_slider_matches_get_iteration_performance(env, portal):
    """Detection: both sliders, on a tiny disc-finding project (2 epochs: the numbers, not the model, matter)."""
    from cvlab.datasets.swatches import disc_scene
    from cvlab.domains import find_domain
    from cvlab.training import train_project
    from cvlab.workspace import ImageEntry
    ws = env["ws"]
    p = ws.create_project("discs", domain_id=find_domain("General (compact)", "ObjectDetection").id)
    tag = ws.create_tag(p.id, "disc").id
    entries = []
    for seed in range(16):
        data, (left, top, w, h) = disc_scene(seed)
        entries.append(ImageEntry(data, f"disc{seed}.jpg", regions=({"tag_id": tag, "left": left, "top": top,
                                                                      "width": w, "height": h},)))
    ws.create_images(p.id, entries)
    it = train_project(ws, p.id, show_progress=False)
    assert it.status == "Completed", it.training_error_details
    trainer = sdk_trainer(env["handle"])
    page = portal.open(env["handle"].training_key, f"#/projects/{p.id}/performance")
    for prob, overlap in ((30, 50), (30, 10), (5, 90)):
        page.get_by_role("slider", name="Probability Threshold").fill(str(prob))
        page.get_by_role("slider", name="Overlap Threshold").fill(str(overlap))
        perf = trainer.get_iteration_performance(p.id, it.id, threshold=prob / 100, overlap_threshold=overlap / 100)
        for label, v in (("Precision", perf.precision), ("Recall", perf.recall), ("mAP", perf.average_precision)):
            _wait_gauge(page, label, v)
    portal.shot("overlap")
    portal.assert_no_errors()


def test_smart_labeler_suggests_and_confirms_in_a_batch(env, portal):
    t = env["trained"]
    pid, iid = t["project"].id, t["iteration"].id
    trainer = sdk_trainer(env["handle"])
    untagged = trainer.get_untagged_image_count(pid)
    assert untagged == 8
    from azure.cognitiveservices.vision.customvision.training.models import SuggestedTagAndRegionQueryToken
    suggested = trainer.query_suggested_images(pid, iid, SuggestedTagAndRegionQueryToken(
        tag_ids=list(t["tags"].values()), threshold=0, max_count=50, sort_by="UncertaintyDescending"))
    expected = {r.id: max(r.predictions, key=lambda p: p.probability).tag_id for r in suggested.results}
    page = portal.open(env["handle"].training_key, f"#/projects/{pid}/images")
    page.get_by_role("button", name="Untagged", exact=True).click()
    page.get_by_role("button", name="Get suggested tags").click()
    dialog = page.get_by_role("dialog", name="Get suggested tags")
    dialog.get_by_label("Number of images").fill("50")
    dialog.get_by_role("button", name="Get suggested tags").click()
    view = page.get_by_role("region", name="Suggested tags")
    view.get_by_role("button", name=re.compile(r"^Suggestion 1:")).wait_for()
    expect(view.get_by_role("button", name=re.compile(r"^Suggestion \d+:"))).to_have_count(untagged)
    page.get_by_label("Sort by uncertainty").select_option(label="Low to high")
    page.get_by_label("Sort by uncertainty").select_option(label="High to low")
    portal.shot("suggestions")
    view.get_by_role("button", name="Confirm suggested tags").click()
    view.get_by_text("No more suggestions here").wait_for()
    assert trainer.get_untagged_image_count(pid) == 0
    tagged = {im.id: im.tags[0].tag_id for im in trainer.get_images_by_ids(pid, list(expected))}
    assert tagged == expected
    portal.assert_no_errors()


def test_predictions_save_and_close_adds_the_image_to_training(env, portal):
    from cvlab.datasets.swatches import swatch_jpeg
    t = env["trained"]
    pid = t["project"].id
    trainer = sdk_trainer(env["handle"])
    tested = trainer.quick_test_image(pid, swatch_jpeg((30, 40, 200), 777), iteration_id=t["iteration"].id)
    before = trainer.get_image_count(pid)
    page = portal.open(env["handle"].training_key, f"#/projects/{pid}/predictions")
    thumb = page.get_by_role("button", name=re.compile(r"^Prediction 1: "))
    top = max(tested.predictions, key=lambda p: p.probability)
    assert top.tag_name in thumb.get_attribute("aria-label")
    thumb.hover()
    page.locator(".hover-tags").first.wait_for()
    portal.shot("hover")
    thumb.click()
    detail = page.get_by_role("dialog", name="Prediction")
    assert detail.get_by_role("button", name=top.tag_name, exact=True).get_attribute("aria-pressed") == "true"
    detail.get_by_role("button", name="red", exact=True).click()  # correct it: multiclass, so red replaces blue
    detail.get_by_role("button", name="Save and close").click()
    page.get_by_text("Added to Training Images").wait_for()
    assert trainer.get_image_count(pid) == before + 1
    newest = trainer.get_tagged_images(pid, tag_ids=[t["tags"]["red"]], take=256)
    assert any(im.width == 64 for im in newest)
    left = trainer.query_predictions(pid, {"orderBy": "Newest", "maxCount": 50}).results
    assert tested.id not in {p.id for p in left}  # moved out of Predictions, as on the portal
    portal.assert_no_errors()


@pytest.mark.slow
def test_delete_is_refused_while_the_iteration_is_published(env, portal):
    from cvlab.training import train_project
    t = env["trained"]
    pid = t["project"].id
    ws, handle = env["ws"], env["handle"]
    it = train_project(ws, pid, force_train=True, show_progress=False)
    trainer = sdk_trainer(handle)
    trainer.publish_iteration(pid, it.id, "to-keep", handle.prediction_resource_id)
    page = portal.open(handle.training_key, f"#/projects/{pid}/performance?iteration={it.id}")
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("dialog", name="Are you sure?").get_by_role("button", name="Delete").click()
    refusal = page.get_by_role("alert").filter(has_text="unpublish it first")
    refusal.wait_for()
    assert "BadRequestIterationIsPublished" in refusal.inner_text()
    portal.shot("delete refused")
    assert trainer.get_iteration(pid, it.id).publish_name == "to-keep"
    page.get_by_role("button", name="Unpublish").click()
    page.get_by_role("button", name="Publish", exact=True).wait_for()
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("dialog", name="Are you sure?").get_by_role("button", name="Delete").click()
    page.get_by_text(f"{it.name} deleted").wait_for()
    assert it.id not in {i.id for i in trainer.get_iterations(pid)}
    portal.assert_no_errors()


@pytest.mark.slow
def test_export_is_refused_on_a_non_compact_domain(env, portal):
    from azure.cognitiveservices.vision.customvision.training.models import CustomVisionErrorException
    from cvlab.training import train_project
    ws, handle = env["ws"], env["handle"]
    info = colours_project(ws, "colours-general", domain="General", mislabelled=0, untagged=0)
    pid = info["project"].id
    it = train_project(ws, pid, show_progress=False)
    trainer = sdk_trainer(handle)
    with pytest.raises(CustomVisionErrorException) as sdk_error:
        trainer.export_iteration(pid, it.id, "ONNX")
    page = portal.open(handle.training_key, f"#/projects/{pid}/performance")
    page.get_by_role("button", name="Export").click()
    dialog = page.get_by_role("dialog", name="Choose your platform")
    for platform in ("TensorFlow", "CoreML", "ONNX", "Dockerfile", "Vision AI Dev Kit", "OpenVINO"):
        expect(dialog.get_by_role("button", name=re.compile(rf"^{platform}\b"))).to_be_visible(timeout=30_000)
    dialog.get_by_role("button", name=re.compile(r"^ONNX")).click()
    dialog.get_by_role("button", name="Export", exact=True).click()
    alert = dialog.get_by_role("alert").filter(has_text="non-compact domain")
    alert.wait_for()
    assert sdk_error.value.message in alert.inner_text()
    assert trainer.get_exports(pid, it.id) == []
    portal.shot("refused")
    portal.assert_no_errors()


def test_project_settings_changes_follow_azures_rules(env, portal):
    handle = env["handle"]
    pid, trainer, page = _open_new_project(env, portal, "to-rename", "settings", per_tag=1, mislabelled=0, untagged=0)
    assert page.get_by_role("textbox", name="Project Id", exact=True).input_value() == pid
    assert page.get_by_label("Key", exact=True).input_value() == handle.training_key
    page.get_by_label("Project Name").fill("renamed")
    page.get_by_label("Description").fill("a new description")
    page.get_by_role("radio", name="Multilabel (Multiple tags per image)").check()
    page.get_by_role("radio", name="Retail (compact)").check()
    page.get_by_role("button", name="Save Changes").click()
    page.get_by_text("Project settings saved").wait_for()
    p = trainer.get_project(pid)
    assert (p.name, p.description, p.settings.classification_type) == ("renamed", "a new description", "Multilabel")
    assert trainer.get_domain(p.settings.domain_id).name == "Retail (compact)"
    page.get_by_role("heading", name="renamed", exact=True).wait_for()
    page.get_by_role("radio", name="Vision AI Dev Kit").check()  # a compact domain: export capabilities
    page.get_by_role("button", name="Save Changes").click()
    page.get_by_text("Project settings saved").last.wait_for()
    assert trainer.get_project(pid).settings.target_export_platforms == ["VAIDK"]
    page.get_by_role("radio", name="Object Detection").check()  # Azure keeps the project type
    page.get_by_role("button", name="Save Changes").click()
    refusal = page.get_by_role("alert").filter(has_text="cannot switch")
    refusal.wait_for()
    assert "BadRequestProjectUnsupportedDomainTypeChange" in refusal.inner_text()
    assert trainer.get_domain(trainer.get_project(pid).settings.domain_id).type == "Classification"
    portal.shot("type change refused")
    portal.assert_no_errors()


def test_keyboard_labeling_in_image_detail(env, portal):
    pid, trainer, page = _open_new_project(env, portal, "keys", per_tag=0, mislabelled=0, untagged=2)
    page.get_by_role("button", name=re.compile(r"^Image 1\b")).click()
    detail = page.get_by_role("dialog", name="Image Detail")
    for n in range(4):
        detail.locator(".chips").get_by_text("No tags yet").wait_for()
        page.keyboard.press(str(1 + n % 2))
        detail.locator(".chips .chip").first.wait_for()
        if n < 3:
            page.keyboard.press("ArrowRight")
            page.get_by_text(f"Image {n + 2} of 4").wait_for()
    page.keyboard.press("0")  # the Negative tag replaces the last one
    detail.locator(".chip.negative").wait_for()
    detail.get_by_role("button", name="Done").click()
    counts = {tg.name: tg.image_count for tg in trainer.get_tags(pid)}
    assert counts == {"red": 2, "blue": 1, "Negative": 1}
    assert trainer.get_untagged_image_count(pid) == 0
    portal.assert_no_errors()


def test_a_key_pressed_the_moment_the_image_shows_is_not_lost(env, portal):
    """The stop CI's failure, made deterministic: a key press that arrives as soon as the tagger is on screen (a
    fast labeler, or a loaded machine where the next frame is late) must tag the image. The key is sent from a
    MutationObserver, in the microtask after the tagger's DOM is committed and before the browser paints it: the
    keyboard listeners must already be attached then (layout effects), not a frame later (plain effects)."""
    pid, trainer, page = _open_new_project(env, portal, "fastkeys", per_tag=0, mislabelled=0, untagged=2)
    untagged = trainer.get_untagged_image_count(pid)
    page.evaluate("""() => new MutationObserver((_, observer) => {
        const chips = document.querySelector('dialog[open] .chips');
        if (!chips || !chips.textContent.includes('No tags yet')) return;
        observer.disconnect();
        document.body.dispatchEvent(new KeyboardEvent('keydown', { key: '1', bubbles: true, cancelable: true }));
      }).observe(document.body, { childList: true, subtree: true, characterData: true })""")
    page.get_by_role("button", name=re.compile(r"^Image 1\b")).click()
    detail = page.get_by_role("dialog", name="Image Detail")
    detail.locator(".chips .chip").first.wait_for(timeout=10_000)
    assert trainer.get_untagged_image_count(pid) == untagged - 1
    portal.assert_no_errors()


def test_an_upload_goes_on_when_the_learner_leaves_the_dialog(env, portal, tmp_path):
    from test_portal_support import FRUIT
    ws, handle = env["ws"], env["handle"]
    p = ws.create_project("uploads")
    files = sorted((FRUIT / "classification" / "training-images").rglob("*.jpg"))
    page = portal.open(handle.training_key, f"#/projects/{p.id}/images")
    refused = []

    def refuse_first_batch(route):  # Azure's gateway counts uploads against the rate limit: the portal must wait, resend
        if route.request.method == "POST" and not refused:
            refused.append(route.request.url)
            route.fulfill(status=429, headers={"Retry-After": "1", "Content-Type": "application/json"},
                          body='{"error": {"code": "429", "message": "Rate limit is exceeded."}}')
        else:
            route.continue_()
    page.route(re.compile(rf"/projects/{p.id}/images\?"), refuse_first_batch)
    page.get_by_role("button", name="Add images").click()
    upload = page.get_by_role("dialog", name="Image upload")
    with page.expect_file_chooser() as chooser:
        upload.get_by_role("button", name="Browse local files").click()
    chooser.value.set_files([str(f) for f in files])
    upload.get_by_label("My Tags").fill("fruit")
    upload.get_by_role("button", name=f"Upload {len(files)} files").click()
    upload.get_by_role("button", name="Close").click()  # leave it; the upload goes on
    page.get_by_role("link", name="Performance").click()
    page.get_by_role("link", name="Training Images").click()
    page.get_by_role("button", name=re.compile(rf"^Image {len(files)}\b")).wait_for(timeout=120_000)
    assert sdk_trainer(handle).get_tagged_image_count(p.id) == len(files)
    assert len(refused) == 1
    portal.assert_no_errors()


@pytest.mark.slow
def test_advanced_training_writes_the_notification_email_to_the_outbox(env, portal):
    handle = env["handle"]
    pid, _, page = _open_new_project(env, portal, "advanced", per_tag=5, mislabelled=0, untagged=0)
    page.get_by_role("button", name="Train", exact=True).click()
    train = page.get_by_role("dialog", name="Choose Training Type")
    train.get_by_role("radio", name="Advanced Training").check()
    train.get_by_label("Training budget (hours)").fill("0")
    train.get_by_role("checkbox", name="Send me an email when training is complete").check()
    train.get_by_label("Email address").fill("learner@example.com")
    train.get_by_role("button", name="Train", exact=True).click()
    refusal = train.get_by_role("alert").filter(has_text="Reserved budget in hours is not enough")
    refusal.wait_for()  # Azure's FAQ text, shown as it comes
    portal.shot("budget refused")
    train.get_by_label("Training budget (hours)").fill("1")
    expect(train).to_contain_text("Estimated minimum budget: 1 hour")
    train.get_by_role("button", name="Train", exact=True).click()
    page.get_by_label("Training progress").wait_for()
    portal.shot("training")
    page.get_by_role("group", name=re.compile(r"^AP ")).wait_for(timeout=300_000)
    wait_iteration(sdk_trainer(handle), pid, sdk_trainer(handle).get_iterations(pid)[0].id)
    page.get_by_role("link", name="Projects Gallery").click()
    page.get_by_role("button", name="Settings").click()
    page.get_by_role("button", name="Open outbox").click()
    outbox = page.get_by_role("dialog", name="Outbox")
    mail = outbox.get_by_role("button", name=re.compile(r"training of advanced"))
    mail.wait_for()
    mail.click()
    expect(outbox).to_contain_text("learner@example.com")  # expect() retries until the mail is shown
    expect(outbox.locator("pre")).to_contain_text("Precision")
    portal.shot("outbox")
    portal.assert_no_errors()


def test_screens_reflow_at_200_percent_zoom(env):
    """1280x800 at 200 % zoom is a 640x400 CSS viewport: no screen may need sideways scrolling."""
    t = env["trained"]
    pid = t["project"].id
    portal = Portal(env["browser"], env["handle"], "zoom-200", viewport={"width": 640, "height": 400},
                    device_scale_factor=2)
    page = portal.open(env["handle"].training_key)
    for hash_, ready in (("#/", "New Project"), (f"#/projects/{pid}/images", "Add images"),
                         (f"#/projects/{pid}/performance", "Export"), (f"#/projects/{pid}/predictions", "Refresh"),
                         (f"#/projects/{pid}/settings", "Save Changes")):
        page.goto(portal.url + hash_)
        page.get_by_role("button", name=ready).first.wait_for()
        portal.shot(hash_.strip("#/").split("/")[-1] or "gallery")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (hash_, overflow)
    portal.assert_no_errors()
    portal.close()


@pytest.mark.slow
def test_names_typed_by_users_are_text_never_html(env, portal, tmp_path):
    """Project, tag, file and metadata names carrying markup, on every screen that shows them."""
    from cvlab.datasets.swatches import swatch_jpeg
    from cvlab.training import train_project
    ws, handle = env["ws"], env["handle"]
    info = colours_project(ws, XSS, tags=(XSS, f"{XSS}2"), per_tag=5, mislabelled=0, untagged=0)
    p = info["project"]
    ws.update_project(p.id, description=XSS)
    images = ws.get_images(p.id, take=3)
    ws.update_image_metadata(p.id, [images[0].id], {XSS: XSS})
    it = train_project(ws, p.id, show_progress=False)
    trainer = sdk_trainer(handle)
    trainer.quick_test_image(p.id, swatch_jpeg((200, 30, 30), 999), iteration_id=it.id)
    trainer.publish_iteration(p.id, it.id, XSS, handle.prediction_resource_id)
    named = tmp_path / f"{XSS}.jpg"
    named.write_bytes(swatch_jpeg((200, 30, 30), 4242))
    page = portal.open(handle.training_key)

    def clean(where):
        assert page.evaluate("() => window.__xss") is None, where
        assert page.locator("img[src='x']").count() == 0, where

    page.get_by_role("link", name=XSS).first.wait_for()
    portal.shot("gallery")
    assert not portal.errors, portal.errors
    page.get_by_role("searchbox", name="Search projects").fill("<img")
    clean("gallery")
    page.get_by_role("link", name=XSS).first.click()
    page.get_by_role("checkbox", name=XSS, exact=True).wait_for()
    clean("training images")
    page.get_by_role("button", name="Add images").click()
    upload = page.get_by_role("dialog", name="Image upload")
    with page.expect_file_chooser() as chooser:
        upload.get_by_role("button", name="Browse local files").click()
    chooser.value.set_files(str(named))
    upload.get_by_text(named.name).wait_for()
    clean("upload dialog")
    upload.get_by_role("button", name="Close").click()
    page.get_by_role("button", name=re.compile(r"^Image 1\b")).click()  # the newest: the one with the metadata
    page.get_by_role("dialog", name="Image Detail").wait_for()
    page.get_by_role("region", name="Metadata").get_by_text(XSS).first.wait_for()
    clean("image detail")
    page.get_by_role("dialog", name="Image Detail").get_by_role("button", name="Done").click()
    page.get_by_role("link", name="Performance").click()
    page.get_by_role("row", name=re.compile(re.escape(XSS))).first.wait_for()
    expect(page.get_by_text(f"as {XSS}")).to_be_visible(timeout=30_000)
    clean("performance")
    page.get_by_role("button", name="Prediction URL").click()
    page.get_by_role("dialog", name="How to use the Prediction API").wait_for()
    clean("prediction url")
    page.get_by_role("button", name="Close").click()
    page.get_by_role("link", name="Predictions").click()
    page.get_by_role("button", name=re.compile(r"^Prediction 1:")).click()
    page.get_by_role("dialog", name="Prediction").get_by_role("cell", name=XSS).first.wait_for()
    clean("predictions")
    page.get_by_role("dialog", name="Prediction").get_by_role("button", name="Cancel").click()
    page.get_by_role("link", name="Project Settings").click()
    assert page.get_by_label("Project Name").input_value() == XSS
    clean("settings")
    portal.shot("settings")
    portal.assert_no_errors()


def test_train_dialog_shows_azures_refusals_and_tag_filters_narrow_the_images(env, portal):
    """Too few images per tag: Azure's refusal, with its text, in the dialog. A tag's checkbox shows its images."""
    handle = env["handle"]
    _, _, page = _open_new_project(env, portal, "too-few", per_tag=2, mislabelled=0, untagged=0)
    page.get_by_role("button", name="Train", exact=True).click()
    train = page.get_by_role("dialog", name="Choose Training Type")
    train.get_by_role("button", name="Train", exact=True).click()
    refusal = train.get_by_role("alert")
    refusal.wait_for()
    assert "at least 5" in refusal.inner_text() and "BadRequest" in refusal.inner_text()
    portal.shot("too few images")
    train.get_by_role("button", name="Cancel").click()

    t = env["trained"]
    page.goto(portal.url + f"#/projects/{t['project'].id}/images")
    red = sdk_trainer(handle).get_tagged_image_count(t["project"].id, tag_ids=[t["tags"]["red"]])
    page.get_by_role("checkbox", name="red", exact=True).check()  # the tag filter: red images only
    page.wait_for_function("(n) => { const b = [...document.querySelectorAll('.grid .thumb-button')];"
                           " return b.length === n && b.every((x) => x.getAttribute('aria-label').includes('red')); }",
                           arg=red)
    portal.assert_no_errors()

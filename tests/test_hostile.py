"""Hostile input over HTTP against the real service on 127.0.0.1: each is refused with a 4xx carrying an Azure
code (or, inside an upload batch, a per-image error status), the server stays healthy, and nothing stored
changes."""
from __future__ import annotations

import http.server
import io
import json
import threading
import zipfile

import pytest

from cvlab.errors import CvlabError
from helpers import assert_azure_error, colour_jpeg, png, png_with_declared_size, snapshot
from test_reliability_support import published_colours

pytestmark = pytest.mark.timeout(300)

RED, BLUE = (200, 30, 30), (30, 40, 200)


class _HostileHost(http.server.BaseHTTPRequestHandler):
    """/loop redirects to itself forever; /hang accepts the connection and never answers."""

    release = threading.Event()

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path.startswith("/loop"):
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path.startswith("/hang"):
            self.release.wait(30)
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def env(trained_colours):
    """One server on a copy of the trained colours workspace (iteration published), one hostile web host."""
    with published_colours(trained_colours) as (ws, handle, api, info):
        host = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HostileHost)
        host.daemon_threads = True
        threading.Thread(target=host.serve_forever, daemon=True).start()
        yield {"ws": ws, "api": api, "pid": info["project_id"], "tags": info["tags"], "iteration": info["iteration_id"],
               "root": info["root"], "host": f"http://127.0.0.1:{host.server_address[1]}"}
        _HostileHost.release.set()
        host.shutdown()


@pytest.fixture
def unchanged(env):
    """Asserts after the test that the server is healthy and nothing stored changed."""
    before = snapshot(env["ws"])
    yield
    assert env["api"].healthy()
    assert snapshot(env["ws"]) == before


def _upload(env, data: bytes, **kw):
    return env["api"].t("POST", f"/projects/{env['pid']}/images", data=data,
                        headers={"Content-Type": "application/octet-stream"}, **kw)


def _predict(env, data: bytes, path: str = "classify/iterations/live/image/nostore"):
    return env["api"].p("POST", f"/{env['pid']}/{path}", data=data,
                        headers={"Content-Type": "application/octet-stream"})


def _one_failed(r, status: str):
    """A refused image inside an upload batch: 207 with the per-image status Azure uses."""
    assert r.status_code == 207, (r.status_code, r.text[:300])
    body = r.json()
    assert body["isBatchSuccessful"] is False
    assert [i["status"] for i in body["images"]] == [status]
    assert body["images"][0].get("image") is None


# ---- images ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", [20_000, 12_000])
def test_decompression_bomb_is_refused_before_decoding(env, unchanged, side):
    """20000² trips Pillow's bomb guard, 12000² its warning (then the side limit): both refused from the header."""
    bomb = png_with_declared_size(side, side)
    assert len(bomb) < 200
    assert_azure_error(_predict(env, bomb), code="BadRequestImageDimensions")
    _one_failed(_upload(env, bomb), "ErrorImageDimensions")


def test_truncated_image_is_refused(env, unchanged):
    good = colour_jpeg(RED, seed=999, size=128)
    for cut in (good[: len(good) // 2], good[:40]):
        assert_azure_error(_predict(env, cut), code="BadRequestImageFormat")
        _one_failed(_upload(env, cut), "ErrorImageFormat")


@pytest.mark.parametrize("payload", [
    b"GIF89a<script>alert(1)</script>" + b"\x00" * 64,                      # image magic, script body
    b"\x89PNG\r\n\x1a\n<?php system($_GET['c']); ?>" + b"\x00" * 64,        # PNG magic, PHP body
    b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",           # SVG is not a supported format
    b"PK\x03\x04" + b"\x00" * 200,                                              # a zip pretending to be an image
])
def test_polyglot_and_disguised_files_are_refused(env, unchanged, payload):
    assert_azure_error(_predict(env, payload), code="BadRequestImageFormat")
    _one_failed(_upload(env, payload), "ErrorImageFormat")


def test_image_zip_polyglot_is_stored_and_served_only_as_an_image(env):
    """A real JPEG with a zip appended is a valid JPEG: it may be stored, but it comes back as image/jpeg."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../evil.sh", "rm -rf /")
    data = colour_jpeg(RED, seed=4242) + buf.getvalue()
    r = _upload(env, data)
    assert r.status_code == 200, r.text
    image = r.json()["images"][0]["image"]
    got = env["api"].s.get(image["originalImageUri"], timeout=30)
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.content == data  # served byte for byte, never unpacked
    assert not (env["root"] / "evil.sh").exists() and not (env["ws"].path.parent / "evil.sh").exists()
    env["api"].t("DELETE", f"/projects/{env['pid']}/images", params={"imageIds": image["id"]})


@pytest.mark.parametrize("w,h", [(10_000, 1), (1, 10_000)])
def test_needle_images_are_refused(env, unchanged, w, h):
    data = png(w, h)
    assert_azure_error(_predict(env, data), code="BadRequestImageAspectRatio")
    _one_failed(_upload(env, data), "ErrorImageDimensions")


@pytest.mark.parametrize("name", ["../../escape.jpg", "/etc/passwd", "..\\..\\win.jpg", "a/../../b.jpg",
                                  "nul\x00byte.jpg"])
def test_image_names_never_become_paths(env, name):
    """A name is a label: the blob is content-addressed, so the name cannot put a file anywhere."""
    import base64
    data = colour_jpeg(BLUE, seed=hash(name) % 10_000 + 5000)
    r = env["api"].t("POST", f"/projects/{env['pid']}/images/files",
                     json={"images": [{"name": name, "contents": base64.b64encode(data).decode()}]})
    assert r.status_code in (200, 207, 400), r.text
    if r.status_code == 400:
        assert_azure_error(r)
    elif r.status_code == 207:  # the name itself refused (NUL, controls): that image only, nothing stored
        assert r.json()["images"][0]["status"] != "OK" and r.json()["images"][0]["image"] is None
        assert all(im.original_name != name for im in env["ws"].get_images(env["pid"], take=256))
    else:
        img = r.json()["images"][0]["image"]
        assert env["ws"].image_path(env["ws"].get_image(env["pid"], img["id"])).is_relative_to(env["ws"].blobs_dir)
        env["api"].t("DELETE", f"/projects/{env['pid']}/images", params={"imageIds": img["id"]})
    for where in (env["root"], env["ws"].path, env["ws"].path.parent.parent):
        assert not list(where.glob("escape.jpg")) and not list(where.glob("b.jpg"))
    assert env["api"].healthy()


# ---- archives and imports --------------------------------------------------------------------------------------
@pytest.mark.parametrize("member", ["../escaped.txt", "../../escaped.txt", "/tmp/cvlab-abs-escaped.txt",
                                    "ok/../../escaped.txt", "C:\\escaped.txt"])
def test_zip_slip_archives_are_refused(env, tmp_path, member):
    from cvlab.datasets import formats
    from cvlab.datasets.importing import import_path
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("red/ok.png", png(8, 8))
        zf.writestr(member, "pwned")
    dest = tmp_path / "out" / "inner"
    with pytest.raises(CvlabError) as e:
        formats.extract_zip(archive, dest)
    assert e.value.status == 400 and member.replace("\\", "/").split("/")[-1] in e.value.message or e.value.code
    assert not (tmp_path / "out" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    before = snapshot(env["ws"])
    with pytest.raises(CvlabError):
        import_path(env["ws"], archive, project="zipslip")
    assert snapshot(env["ws"]) == before and env["ws"].find_project("zipslip") is None


def test_zip_with_symlink_member_is_refused(tmp_path):
    from cvlab.datasets import formats
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(CvlabError, match="symlink"):
        formats.extract_zip(archive, tmp_path / "x")


def test_annotation_paths_escaping_the_folder_are_refused(env, tmp_path):
    """A COCO file naming ../../secret.png must not read outside the dataset folder."""
    from cvlab.datasets.importing import import_path
    secret = tmp_path / "secret.png"
    secret.write_bytes(png(16, 16))
    data = tmp_path / "data" / "coco"
    data.mkdir(parents=True)
    (data / "annotations.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "../../secret.png", "width": 16, "height": 16}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 8, 8]}],
        "categories": [{"id": 1, "name": "x"}]}))
    before = snapshot(env["ws"])
    with pytest.raises(CvlabError):
        import_path(env["ws"], data, project="escape", format="coco")
    assert snapshot(env["ws"]) == before


# ---- request bodies --------------------------------------------------------------------------------------------
def test_deeply_nested_json_is_a_400(env, unchanged):
    depth = 100_000
    body = "[" * depth + "]" * depth
    for path in (f"/projects/{env['pid']}/images/files", f"/projects/{env['pid']}/images/regions",
                 f"/projects/{env['pid']}/images/tags"):
        r = env["api"].t("POST", path, data=body, headers={"Content-Type": "application/json"})
        assert_azure_error(r)
    r = env["api"].t("PATCH", f"/projects/{env['pid']}", data='{"name":' * 50_000 + '"x"' + "}" * 50_000,
                     headers={"Content-Type": "application/json"})
    assert_azure_error(r)


def test_huge_json_is_refused(env, unchanged):
    """32 MB of JSON (a 30 MB description, and 64 entries of 500 kB base64 garbage)."""
    r = env["api"].t("PATCH", f"/projects/{env['pid']}", json={"name": "hostile", "description": "x" * 30_000_000})
    assert_azure_error(r)
    junk = "A" * 500_000
    r = env["api"].t("POST", f"/projects/{env['pid']}/images/files",
                     json={"images": [{"name": f"{i}.jpg", "contents": junk} for i in range(64)]})
    assert r.status_code in (207, 400), r.text[:300]
    if r.status_code == 207:
        assert all(i["status"] != "OK" for i in r.json()["images"])


@pytest.mark.parametrize("ctype,body", [
    ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data; name=\"imageData\"\r\n"),
    ("multipart/form-data; boundary=xyz", b"garbage without any boundary at all"),
    ("multipart/form-data", b"--\r\n\r\n--"),
    ("multipart/form-data; boundary=" + "b" * 5000, b"--" + b"b" * 5000 + b"\r\n\r\n"),
    ("multipart/form-data; boundary=xyz", b"--xyz\r\n" + b"X-Header: " + b"h" * 200_000 + b"\r\n\r\ndata\r\n--xyz--"),
])
def test_malformed_multipart_is_a_400(env, unchanged, ctype, body):
    r = env["api"].t("POST", f"/projects/{env['pid']}/images", data=body, headers={"Content-Type": ctype})
    assert_azure_error(r)
    r = env["api"].p("POST", f"/{env['pid']}/classify/iterations/live/image", data=body,
                     headers={"Content-Type": ctype})
    assert_azure_error(r)


def test_region_list_of_100000_entries_is_refused(env, unchanged):
    ws, pid = env["ws"], env["pid"]
    image_id = ws.get_images(pid, take=1)[0].id
    regions = [{"imageId": image_id, "tagId": env["tags"]["red"], "left": 0.1, "top": 0.1, "width": 0.2,
                "height": 0.2}] * 100_000
    r = env["api"].t("POST", f"/projects/{pid}/images/regions", json={"regions": regions})
    assert_azure_error(r, code="BadRequestExceededBatchSize")


# ---- tag names -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["x" * 10_000, "é" * 300, "\x00nul", "", "   ", "🙂" * 1000])
def test_overlong_or_empty_tag_names_are_refused(env, unchanged, name):
    r = env["api"].t("POST", f"/projects/{env['pid']}/tags", params={"name": name})
    assert_azure_error(r)


@pytest.mark.parametrize("name", ["Ünïcødé", "猫", "🙂 smile", "עברית", "a\u200bb", "<script>x</script>"])
def test_unicode_tag_names_round_trip(env, name):
    api, pid = env["api"], env["pid"]
    r = api.t("POST", f"/projects/{pid}/tags", params={"name": name})
    assert r.status_code == 200, r.text
    tag = r.json()
    assert tag["name"] == name
    assert any(t["name"] == name for t in api.t("GET", f"/projects/{pid}/tags").json())
    assert api.t("DELETE", f"/projects/{pid}/tags/{tag['id']}").status_code == 204


# ---- URL predictions -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x.jpg", "gopher://127.0.0.1:70/_x",
                                 "data:image/png;base64,iVBORw0KGgo=", "javascript:alert(1)", "/etc/passwd",
                                 "http://", "", "x" * 10_000])
def test_url_prediction_refuses_non_http_schemes(env, unchanged, url):
    r = env["api"].p("POST", f"/{env['pid']}/classify/iterations/live/url/nostore", json={"url": url})
    assert_azure_error(r)
    r = env["api"].t("POST", f"/projects/{env['pid']}/quicktest/url", params={"store": "false"}, json={"url": url})
    assert_azure_error(r)


def test_url_prediction_redirect_loop_is_a_400(env, unchanged, monkeypatch):
    monkeypatch.setenv("CVLAB_ALLOW_PRIVATE_URLS", "1")  # the hostile host is on 127.0.0.1
    r = env["api"].p("POST", f"/{env['pid']}/classify/iterations/live/url/nostore",
                     json={"url": env["host"] + "/loop"})
    assert_azure_error(r, code="BadRequestImageUrl")


def test_url_prediction_to_a_silent_server_times_out(env, unchanged, monkeypatch):
    """The fetch gives up (bounded time) with a 400 instead of holding the request forever."""
    from cvlab.service import fetch
    monkeypatch.setattr(fetch, "DEADLINE_SECONDS", 1.0)  # the service's 10 s, shortened
    monkeypatch.setenv("CVLAB_ALLOW_PRIVATE_URLS", "1")  # the hostile host is on 127.0.0.1
    r = env["api"].p("POST", f"/{env['pid']}/classify/iterations/live/url/nostore",
                     json={"url": env["host"] + "/hang"}, timeout=30)
    body = assert_azure_error(r, code="BadRequestImageUrl")
    assert body["message"] == fetch.UNREACHABLE  # the same words whatever went wrong (no port scanner)
    r = env["api"].t("POST", f"/projects/{env['pid']}/images/urls",
                     json={"images": [{"url": env["host"] + "/hang"}]}, timeout=30)
    assert r.status_code == 207 and r.json()["images"][0]["status"] == "ErrorSource"


def test_a_good_prediction_still_works_after_all_that(env):
    r = _predict(env, colour_jpeg(RED, seed=77))
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["tagName"] == "red"


def test_oversized_bodies_are_refused(env, unchanged):
    """A 40 MB upload: BadRequestImageSizeBytes for a prediction, ErrorImageSize inside an upload batch."""
    big = colour_jpeg(RED, seed=31337) + b"\x00" * (40 * 2**20)
    assert_azure_error(_predict(env, big), code="BadRequestImageSizeBytes")
    _one_failed(_upload(env, big), "ErrorImageSize")


def test_the_azure_sdk_sees_azure_errors_for_hostile_input(env, unchanged):
    """The official SDK raises CustomVisionErrorException carrying the code, as against Azure."""
    from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
    from azure.cognitiveservices.vision.customvision.prediction.models import \
        CustomVisionErrorException as PredictionError
    from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
    from azure.cognitiveservices.vision.customvision.training.models import CustomVisionErrorException
    from msrest.authentication import ApiKeyCredentials
    api = env["api"]
    trainer = CustomVisionTrainingClient(api.base, ApiKeyCredentials(in_headers={"Training-key": api.tk}))
    predictor = CustomVisionPredictionClient(api.base, ApiKeyCredentials(in_headers={"Prediction-key": api.pk}))
    with pytest.raises(CustomVisionErrorException) as e:
        trainer.create_tag(env["pid"], "x" * 10_000)
    assert e.value.error.code.startswith("BadRequest")
    with pytest.raises(PredictionError) as e:
        predictor.classify_image_url_with_no_store(env["pid"], "live", url="file:///etc/passwd")
    assert e.value.error.code == "BadRequestImageUrl"
    with pytest.raises(PredictionError) as e:
        predictor.classify_image_with_no_store(env["pid"], "live", png_with_declared_size(20_000, 20_000))
    assert e.value.error.code == "BadRequestImageDimensions"
    summary = trainer.create_images_from_data(env["pid"], b"GIF89a<script>alert(1)</script>")
    assert not summary.is_batch_successful and summary.images[0].status == "ErrorImageFormat"

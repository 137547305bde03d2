"""Isolation and keys: every API route refuses a missing key, a wrong key and the other API's key; keys are
compared in constant time and never logged; blob and export links are unguessable; the server binds loopback
unless told otherwise and warns when it is not."""
from __future__ import annotations

import hmac
import logging
import re
import uuid

import pytest
import requests

from cvlab.service import auth, start_background
from cvlab.service.app import PREDICTION_PREFIX, TRAINING_PREFIX
from cvlab.workspace import ImageEntry, Workspace
from helpers import colour_jpeg

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("keys") / "ws")
    handle = start_background(ws, rate_limits=False)
    p = ws.create_project("keys")
    t = ws.create_tag(p.id, "t")
    s = ws.create_images(p.id, [ImageEntry(colour_jpeg((200, 10, 10), seed=1), "a.jpg", [t.id])])
    yield handle, ws, {"projectId": p.id, "tagId": t.id, "imageId": s.images[0].image.id}
    handle.stop()
    ws.close()


def _routes(handle, ids):
    """(method, url, api) for every operation of the app's own OpenAPI, ids filled with real ones."""
    spec = handle.app.openapi()
    out = []
    for path, methods in spec["paths"].items():
        if path.startswith(TRAINING_PREFIX):
            api = "training"
        elif path.startswith(PREDICTION_PREFIX):
            api = "prediction"
        else:
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)
        for method in methods:
            out.append((method.upper(), handle.endpoint + url, api))
    return out


def test_every_route_refuses_missing_wrong_and_other_keys(served):
    handle, ws, ids = served
    routes = _routes(handle, ids)
    assert len(routes) >= 50 and {a for *_, a in routes} == {"training", "prediction"}
    before = ws.check(verify_hashes=False)["counts"]
    wrong = "0" * 32
    for method, url, api in routes:
        own = "Training-Key" if api == "training" else "Prediction-Key"
        other_key = handle.prediction_key if api == "training" else handle.training_key
        attempts = {
            "missing": {},
            "wrong": {own: wrong},
            "other kind": {own: other_key},
            "other kind, its own header": {("Prediction-Key" if api == "training" else "Training-Key"): other_key},
            "apim header, wrong": {"Ocp-Apim-Subscription-Key": wrong},
            "empty": {own: ""},
        }
        for what, headers in attempts.items():
            r = requests.request(method, url, headers=headers, timeout=30, json={})
            assert r.status_code == 401, (what, method, url, r.status_code, r.text[:200])
            assert r.json()["error"]["code"] == "401"
        # keys in the query string are checked the same way
        r = requests.request(method, url, params={own: wrong}, timeout=30)
        assert r.status_code == 401, (method, url)
    # other API versions and case spellings go through the same gate
    for version in ("v3.0", "V3.3", "v3.4-PREVIEW"):
        r = requests.get(handle.endpoint + f"/customvision/{version}/Training/projects", timeout=30,
                         headers={"Training-Key": handle.prediction_key})
        assert r.status_code == 401
    assert ws.check(verify_hashes=False)["counts"] == before


def test_keys_are_compared_in_constant_time(served, monkeypatch):
    handle, *_ = served
    seen = []
    real = hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    r = requests.get(handle.endpoint + TRAINING_PREFIX + "/projects", headers={"Training-Key": "nope"}, timeout=30)
    assert r.status_code == 401
    assert (b"nope", handle.training_key.encode()) in seen
    # a prefix of the right key is no better than any other wrong key
    r = requests.get(handle.endpoint + TRAINING_PREFIX + "/projects", timeout=30,
                     headers={"Training-Key": handle.training_key[:-1]})
    assert r.status_code == 401


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        if not record.name.startswith("urllib3"):  # the test's own HTTP client logs its URLs
            self.lines.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")


def test_keys_never_reach_a_log_or_an_error_body(served):
    """Server-side log records (root handler, as an application that configures logging would have) and error
    bodies, for keys in headers and in query strings, on good, bad and failing requests."""
    handle, ws, ids = served
    collect = _Collect()
    root = logging.getLogger()
    old = root.level
    root.addHandler(collect)
    root.setLevel(logging.DEBUG)
    try:
        base = handle.endpoint + TRAINING_PREFIX
        tk, pk = handle.training_key, handle.prediction_key
        bodies = [r.text for r in (
            requests.get(base + "/projects", headers={"Training-Key": tk}, timeout=30),
            requests.get(base + "/projects", params={"Training-Key": tk}, timeout=30),
            requests.get(base + f"/projects/{uuid.uuid4()}", params={"Training-Key": tk}, timeout=30),
            requests.post(base + f"/projects/{ids['projectId']}/images", data=b"junk", timeout=30,
                          params={"Training-Key": tk}),
            requests.post(base + f"/projects/{ids['projectId']}/images", timeout=30, params={"Training-Key": tk},
                          data=b"x", headers={"Content-Type": "multipart/form-data; boundary=" + "b" * 300}),
            requests.get(handle.endpoint + PREDICTION_PREFIX + f"/{ids['projectId']}/x", timeout=30,
                         params={"Prediction-Key": pk}),
            requests.get(base + "/projects", headers={"Training-Key": pk}, timeout=30))]
    finally:
        root.removeHandler(collect)
        root.setLevel(old)
    text = "\n".join(collect.lines + bodies)
    assert tk not in text and pk not in text
    assert "***" in repr(handle.app.state.ctx.keys) and tk not in repr(handle.app.state.ctx.keys)
    assert tk not in repr(handle)


def test_cvlab_serve_debug_log_holds_no_key(tmp_path):
    """`cvlab serve --log-level debug` in a subprocess: after its banner (which shows the keys on purpose, like
    the portal's Keys page), nothing it writes contains a key, even for keys sent in query strings."""
    from helpers import ServeProcess
    with ServeProcess(tmp_path / "ws", "--log-level", "debug") as srv:
        base = srv.endpoint + TRAINING_PREFIX
        for params in ({"Training-Key": srv.training_key}, {"Training-Key": srv.training_key + "x"},
                       {"subscription-key": srv.training_key}):
            requests.get(base + "/projects", params=params, timeout=30)
            requests.get(base + f"/projects/{uuid.uuid4()}", params=params, timeout=30)
        requests.get(srv.endpoint + PREDICTION_PREFIX + "/x/classify/iterations/y/url", timeout=30,
                     params={"Prediction-Key": srv.prediction_key})
        out = srv.stop()
    after_banner = out.split("Press Ctrl+C to stop.", 1)[1]
    assert srv.training_key not in after_banner and srv.prediction_key not in after_banner


def test_blob_links_are_signed_and_export_links_unguessable(served):
    handle, ws, ids = served
    r = requests.get(handle.endpoint + TRAINING_PREFIX + f"/projects/{ids['projectId']}/images",
                     headers={"Training-Key": handle.training_key}, timeout=30)
    uri = r.json()[0]["originalImageUri"]
    assert requests.get(uri, timeout=30).status_code == 200  # opens without a key, like a SAS URL
    tampered = re.sub(r"sig=\w+", "sig=" + "0" * 32, uri)
    r = requests.get(tampered, timeout=30)
    assert r.status_code == 403 and r.json()["code"] == "Forbidden"
    r = requests.get(uri.split("?")[0], timeout=30)
    assert r.status_code == 403
    other = uri.replace(ids["imageId"], str(uuid.uuid4()))
    assert requests.get(other, timeout=30).status_code == 403  # a signature is bound to its image
    for token in ("x", "../cvlab", "..%2Fcvlab", "%2e%2e%2fcvlab", "a" * 32, "cvlab.db"):
        r = requests.get(handle.endpoint + f"/exports/{token}.zip", timeout=30)
        assert r.status_code in (403, 404), (token, r.status_code)  # unsigned: refused before any file lookup
        assert r.json()["code"] in ("Forbidden", "NotFound")


@pytest.fixture
def done_export(served):
    """A Done export record of a compact-domain iteration, with its zip where the exporter puts it."""
    import secrets
    import zipfile
    handle, ws, _ = served
    p = ws.create_project(f"links-{uuid.uuid4().hex[:6]}", domain_id="0732100f-1a38-4e49-a514-c9b44c697ab5")
    it = ws.create_iteration(p.id)
    ws.update_iteration(p.id, it.id, status="Completed")
    ex = ws.create_export(p.id, it.id, "ONNX")
    token = secrets.token_urlsafe(24)
    (ws.path / "exports").mkdir(exist_ok=True)
    with zipfile.ZipFile(ws.path / "exports" / f"{token}.zip", "w") as zf:
        zf.writestr("labels.txt", "t\n")
    ws.update_export(ex.id, status="Done", download_uri=f"exports/{token}.zip", path=f"exports/{token}.zip")
    url = handle.endpoint + TRAINING_PREFIX + f"/projects/{p.id}/iterations/{it.id}/export"

    def link() -> str:
        r = requests.get(url, headers={"Training-Key": handle.training_key}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()[0]["downloadUri"]
    yield link, (ws.path / "exports" / f"{token}.zip").read_bytes()
    ws.delete_project(p.id)


def test_export_links_are_signed_and_refuse_tampering(served, done_export):
    handle, ws, _ = served
    link, zipped = done_export
    uri = link()
    assert re.search(r"/exports/[\w-]+\.zip\?se=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ&sig=[0-9a-f]{32}$", uri), uri
    got = requests.get(uri, timeout=30)  # no key needed, like a SAS URL
    assert got.status_code == 200 and got.content == zipped
    later = re.sub(r"se=(\d{4})", lambda m: f"se={int(m.group(1)) + 1}", uri)  # extending the expiry
    for bad in (re.sub(r"sig=\w+", "sig=" + "0" * 32, uri), later, uri.split("?")[0], uri.split("&sig=")[0],
                re.sub(r"/exports/[\w-]+\.zip", "/exports/" + "A" * 32 + ".zip", uri)):
        r = requests.get(bad, timeout=30)
        assert r.status_code == 403, (bad, r.status_code)
        assert r.json()["code"] == "Forbidden" and "downloadUri" in r.json()["message"]
        assert r.headers["content-type"].startswith("application/json") and b"PK" not in r.content
    from cvlab.service.blobs import export_link
    signed_unknown = export_link(handle.app.state.ctx, handle.endpoint, "exports/" + "B" * 32 + ".zip")
    r = requests.get(signed_unknown, timeout=30)
    assert r.status_code == 404 and r.json()["code"] == "NotFound"


def test_export_links_expire_and_get_exports_signs_fresh_ones(served, done_export, monkeypatch):
    link, zipped = done_export
    import time
    from datetime import datetime, timezone
    monkeypatch.setenv("CVLAB_EXPORT_LINK_SECONDS", "3")  # whole seconds: valid for 2 to 3 s
    uri = link()
    assert requests.get(uri, timeout=30).status_code == 200
    se = datetime.strptime(re.search(r"se=([^&]+)", uri).group(1), "%Y-%m-%dT%H:%M:%SZ")
    time.sleep(max(0.0, se.replace(tzinfo=timezone.utc).timestamp() - time.time()) + 0.2)
    r = requests.get(uri, timeout=30)
    assert r.status_code == 403 and r.json()["code"] == "Forbidden" and "expired" in r.json()["message"]
    assert b"PK" not in r.content
    monkeypatch.delenv("CVLAB_EXPORT_LINK_SECONDS")
    fresh = link()  # the SDK's normal flow: get_exports, then download
    assert fresh != uri
    got = requests.get(fresh, timeout=30)
    assert got.status_code == 200 and got.content == zipped


def test_export_link_default_lifetime_is_an_hour(served):
    from datetime import datetime, timezone

    from cvlab.config import settings
    from cvlab.service.blobs import export_link
    handle = served[0]
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert settings({}).export_link_seconds == 3600
    assert "se=2026-01-01T13:00:00Z" in export_link(handle.app.state.ctx, handle.endpoint, "exports/t.zip", now)


def test_export_tokens_carry_enough_entropy():
    """export_iteration names a download token_urlsafe(24): 192 random bits, nothing derived from ids."""
    import inspect

    import cvlab.export as export
    src = inspect.getsource(export._run)
    assert "secrets.token_urlsafe(24)" in src


def test_server_binds_loopback_by_default_and_warns_otherwise(tmp_path, caplog):
    import argparse

    from cvlab.cli import serve as service_cli
    from cvlab.service.server import warn_if_exposed
    parser = argparse.ArgumentParser()
    service_cli.configure(parser)
    assert parser.parse_args([]).host == "127.0.0.1"
    assert inspect_default(start_background, "host") == "127.0.0.1"
    for host in ("127.0.0.1", "localhost", "::1"):
        assert warn_if_exposed(host) is None
    with caplog.at_level(logging.WARNING, logger="cvlab.service"):
        msg = warn_if_exposed("0.0.0.0")
    assert msg and "WARNING" in msg and "0.0.0.0" in caplog.text


def inspect_default(fn, name):
    import inspect
    return inspect.signature(fn).parameters[name].default

"""The portal's server side, without a browser: the pages and their Content-Security-Policy, the static files, the
vendored libraries, and the cvlab-only /cvlab/portal routes (session, resources, outbox, mistakes, extras)
against a real server on 127.0.0.1."""
from __future__ import annotations

import email
import glob
import re
from pathlib import Path

import pytest
import requests

import cvlab
from cvlab.service.server import start_background

from test_portal_support import ROOT, colours_project

STATIC = ROOT / "cvlab" / "portal" / "static"
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def server(tmp_path):
    ws = cvlab.Workspace(tmp_path / "ws")
    handle = start_background(ws)
    yield handle
    handle.stop()
    ws.close()


def _get(handle, path, key=None, **kw):
    headers = dict(kw.pop("headers", {}))
    if key:
        headers["Training-Key"] = key
    return requests.get(handle.endpoint + path, headers=headers, timeout=30, **kw)


def test_a_browser_gets_the_portal_under_a_strict_csp(server):
    page = _get(server, "/", headers=HTML)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert server.training_key not in page.text and server.prediction_key not in page.text
    assert re.findall(r"<script[^>]*>", page.text) == ['<script type="module" src="/portal/js/app.js">']
    summary = _get(server, "/", headers={"Accept": "application/json"})  # other clients: the JSON summary stays
    assert summary.json()["service"] == "cvlab local Custom Vision endpoint"


def test_static_files_revalidate_and_stay_inside_the_folder(server):
    js = _get(server, "/portal/js/regions.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert js.headers["content-security-policy"]
    again = _get(server, "/portal/js/regions.js", headers={"If-None-Match": js.headers["etag"]})
    assert again.status_code == 304
    for sneaky in ("/portal/../../cvlab.db", "/portal/%2e%2e/%2e%2e/pyproject.toml", "/portal/js/nothing.js",
                   "/portal/js"):
        r = _get(server, sneaky)
        assert r.status_code == 404 and r.json()["code"] == "NotFound", sneaky


def test_every_script_style_and_font_is_a_local_file():
    """Offline by construction: no URL to another origin is loaded (links to Microsoft's docs are only anchors)."""
    for path in STATIC.rglob("*"):
        if path.suffix not in (".js", ".css", ".html"):
            continue
        text = path.read_text()
        assert not re.search(r"""(?:import|from)\s*\(?\s*['"](?:https?:)?//""", text), path
        assert not re.search(r"""@import|url\(\s*['"]?(?:https?:)?//|<link[^>]+href=['"](?:https?:)?//""", text), path
        assert not re.search(r"""<script[^>]+src=['"](?:https?:)?//""", text), path
        for spec in re.findall(r"""from\s*['"]([^'"]+)['"]""", text):
            assert spec.startswith("./") or spec.startswith("../"), (path, spec)
            assert (path.parent / spec).resolve().is_file(), (path, spec)


def test_vendored_libraries_ship_with_their_licences():
    vendor = STATIC / "vendor"
    assert {p.name for p in vendor.iterdir()} >= {"preact.js", "hooks.js", "htm.js", "LICENSE-preact.txt",
                                                   "LICENSE-htm.txt", "README.md"}
    assert "MIT License" in (vendor / "LICENSE-preact.txt").read_text()
    assert "Apache License" in (vendor / "LICENSE-htm.txt").read_text()


def test_package_data_ships_every_static_file():
    import tomllib
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["cvlab"]
    shipped = {Path(f).resolve() for pat in patterns
               for f in glob.glob(str(ROOT / "cvlab" / pat), recursive=True) if Path(f).is_file()}
    missing = [p for p in STATIC.rglob("*") if p.is_file() and p.resolve() not in shipped]
    assert not missing, missing


def test_the_portal_routes_want_the_training_key_in_a_header(server):
    for key in (None, "wrong", server.prediction_key):
        r = _get(server, "/cvlab/portal/session", key)
        assert r.status_code == 401, key
    in_url = _get(server, "/cvlab/portal/session", params={"Training-Key": server.training_key})
    assert in_url.status_code == 401  # a key in a URL ends up in logs and history: refused
    ok = _get(server, "/cvlab/portal/session", server.training_key).json()
    assert ok["role"] == "owner" and ok["workshop"] is False and ok["seat"] is None
    assert ok["training"]["minImagesPerTag"] == {"Classification": 5, "ObjectDetection": 15}


def test_resources_are_what_cvlab_serve_prints(server):
    res = _get(server, "/cvlab/portal/resources", server.training_key).json()["resources"]
    training, prediction = res
    assert (training["kind"], training["name"], training["key"], training["endpoint"]) == \
        ("training", "cvlab", server.training_key, server.endpoint)
    assert (prediction["name"], prediction["key"], prediction["resourceId"]) == \
        ("cvlab-Prediction", server.prediction_key, server.prediction_resource_id)


def test_a_seat_key_opens_that_seat_only(tmp_path):
    from cvlab.workshop import create_seats
    ws = cvlab.Workspace(tmp_path / "ws")
    seats = create_seats(ws, 2)
    with start_background(ws) as handle:
        instructor = _get(handle, "/cvlab/portal/session", handle.training_key).json()
        assert instructor["role"] == "instructor" and instructor["workshop"]
        seat = _get(handle, "/cvlab/portal/session", seats[1].training_key).json()
        assert (seat["role"], seat["seat"]) == ("seat", seats[1].name)
        res = _get(handle, "/cvlab/portal/resources", seats[1].training_key).json()["resources"]
        assert [r["key"] for r in res] == [seats[1].training_key, seats[1].prediction_key]
        assert res[1]["resourceId"] == seats[1].prediction_resource_id
        assert seats[0].training_key not in str(res)
    ws.close()


@pytest.mark.slow
def test_the_outbox_gets_an_email_when_training_ends(server):
    from cvlab.training import train_project, wait
    ws = server.app.state.ctx.ws
    info = colours_project(ws, untagged=0)
    pid = info["project"].id
    it = train_project(ws, pid, show_progress=False, background=True)
    url = f"/cvlab/portal/projects/{pid}/iterations/{it.id}/notification"
    bad = requests.post(server.endpoint + url, params={"address": "not-an-address"},
                        headers={"Training-Key": server.training_key}, timeout=30)
    assert bad.status_code == 400 and bad.json()["code"] == "BadRequestInvalidEmailAddress"
    ok = requests.post(server.endpoint + url, params={"address": "learner@example.com"},
                       headers={"Training-Key": server.training_key}, timeout=30).json()
    assert ok["address"] == "learner@example.com"
    wait(ws, pid, it.id)
    box = _get(server, "/cvlab/portal/outbox", server.training_key).json()
    assert len(box["messages"]) == 1
    mail = box["messages"][0]
    assert mail["to"] == "learner@example.com" and "colours" in mail["subject"] and "completed" in mail["subject"]
    assert "Precision" in mail["text"] and f"#/projects/{pid}/performance?iteration={it.id}" in mail["text"]
    files = list(Path(box["folder"]).glob("*.eml"))
    assert len(files) == 1 and email.message_from_bytes(files[0].read_bytes())["To"] == "learner@example.com"
    again = _get(server, "/cvlab/portal/outbox", server.training_key).json()
    assert len(again["messages"]) == 1  # delivered once


@pytest.mark.slow
def test_mistakes_and_extras_are_the_cores_numbers(server):
    from cvlab.metrics import json_number
    from cvlab.performance import get_iteration_performance, load_evaluation
    from cvlab.service import wire
    from cvlab.training import train_project
    ws = server.app.state.ctx.ws
    info = colours_project(ws, untagged=0)
    pid = info["project"].id
    it = train_project(ws, pid, show_progress=False)
    base = f"/cvlab/portal/projects/{pid}/iterations/{it.id}"
    for t in (0.3, 0.5, 0.9):
        got = _get(server, f"{base}/mistakes", server.training_key, params={"threshold": t}).json()
        want = [m["image_id"] for m in load_evaluation(ws, pid, it.id).mistakes(t)]
        assert [m["imageId"] for m in got["images"]] == want
        extras = _get(server, f"{base}/extras", server.training_key, params={"threshold": t}).json()
        perf = get_iteration_performance(ws, pid, it.id, threshold=t)
        assert extras["performance"] == wire.iteration_performance(perf)
        assert extras["f1"] == json_number(perf.f1)
        assert [x["f1"] for x in extras["perTag"]] == [json_number(x.f1) for x in perf.per_tag_performance]
    assert set(info["mislabelled"]) <= {m["imageId"] for m in _get(server, f"{base}/mistakes",
                                                                    server.training_key).json()["images"]}
    holdout = _get(server, f"{base}/extras", server.training_key, params={"split": "holdout"})
    assert holdout.status_code == 404 and "held-out" in holdout.json()["message"]
    assert _get(server, f"{base}/extras", server.training_key, params={"threshold": 2}).status_code == 400


def test_cvlab_portal_serves_and_prints_the_portal_address(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "cvlab.cli", "portal", "--no-browser", "--port", "0",
                             "--workspace", str(tmp_path / "ws")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    lines, url = [], None
    try:
        end = time.monotonic() + 120
        while url is None and time.monotonic() < end:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"Portal:\s+(\S+)", line)
            url = m.group(1) if m else None
        assert url, "".join(lines)
        page = requests.get(url, headers=HTML, timeout=30)
        assert "Custom Vision (cvlab)" in page.text
        assert re.search(r"Training key:\s+\S+", "".join(lines))  # what the learner signs in with
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def test_cvlab_portal_opens_a_running_portal_instead_of_a_second_server(server, monkeypatch, capsys):
    import argparse
    from cvlab.cli import portal as cli
    opened = []
    monkeypatch.setattr(cli.webbrowser, "open", opened.append)
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["--port", str(server.port)])
    assert cli.run(args) == 0
    assert opened == [f"http://127.0.0.1:{server.port}/"] and "already served" in capsys.readouterr().out

"""Faults: SIGKILL of `cvlab serve` during an upload batch, during training, during export and during a workspace
migration; a full disk while storing images. After each, everything confirmed before the fault is still there
(checked by content hash), the workspace checks out, and what was interrupted is reported as Failed."""
from __future__ import annotations

import base64
import errno
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests

from cvlab.workspace import Workspace
from helpers import Api, ServeProcess, png, snapshot

pytestmark = pytest.mark.timeout(400)
REPO = Path(__file__).resolve().parents[1]


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _assert_consistent(ws: Workspace) -> dict:
    report = ws.check()
    assert report["sqlite_integrity"] == ["ok"] and not report["foreign_key_violations"], report
    assert not report["missing_blobs"] and not report["corrupt_blobs"], report
    assert report["ok"] or report["repairable"], report
    return report


def _assert_confirmed_present(ws: Workspace, pid: str, confirmed: dict[str, tuple[str, str]]) -> None:
    """Every image the server confirmed (id -> (sha256 of the bytes sent, tag id)) is stored, byte for byte."""
    stored = {img.id: img for img in ws.iter_images(pid)}
    for image_id, (sha, tag_id) in confirmed.items():
        img = stored.get(image_id)
        assert img is not None, f"confirmed image {image_id} lost"
        assert img.sha256 == sha and _hash(ws.image_path(img).read_bytes()) == sha
        assert [t.tag_id for t in img.tags] == [tag_id]


# ---- upload batch ----------------------------------------------------------------------------------------------
def test_sigkill_during_upload_batches_loses_nothing_confirmed(tmp_path):
    path = tmp_path / "ws"
    srv = ServeProcess(path)
    api = srv.api
    pid = api.t("POST", "/projects", params={"name": "uploads"}).json()["id"]
    tag = api.t("POST", f"/projects/{pid}/tags", params={"name": "t"}).json()["id"]
    confirmed: dict[str, tuple[str, str]] = {}
    stop = threading.Event()
    errors: list[str] = []

    def uploader():
        n = 0
        while not stop.is_set():
            batch = [png(48, 48, seed=1000 + n + i) for i in range(16)]
            n += 16
            body = {"images": [{"name": f"{n + i}.png", "contents": base64.b64encode(b).decode()}
                               for i, b in enumerate(batch)], "tagIds": [tag]}
            try:
                r = api.t("POST", f"/projects/{pid}/images/files", json=body, timeout=30)
            except requests.RequestException:
                return  # the server died mid-request: this batch was never confirmed
            if r.status_code != 200:
                errors.append(r.text)
                return
            for entry, data in zip(r.json()["images"], batch):
                confirmed[entry["image"]["id"]] = (_hash(data), tag)

    t = threading.Thread(target=uploader)
    t.start()
    while len(confirmed) < 48 and t.is_alive():
        time.sleep(0.02)
    time.sleep(0.05)  # the next batch is in flight
    srv.kill()
    stop.set()
    t.join(30)
    assert not errors and len(confirmed) >= 48

    ws = Workspace(path)
    _assert_consistent(ws)
    _assert_confirmed_present(ws, pid, confirmed)
    assert ws.check(repair=True)["ok"]
    ws.close()
    with ServeProcess(path) as again:  # the server comes back on the same workspace and serves what it holds
        count = again.api.t("GET", f"/projects/{pid}/images/count").json()
        assert count >= len(confirmed)


# ---- training and export ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def interrupted(trained_colours):
    """A copy of the trained colours workspace whose server was SIGKILLed once while exporting its iteration
    and once while training a new one."""
    path, info = trained_colours()
    pid, first = info["project_id"], info["iteration_id"]
    srv = ServeProcess(path)
    r = srv.api.t("POST", f"/projects/{pid}/iterations/{first}/export", params={"platform": "ONNX"})
    assert r.status_code == 200 and r.json()["status"] == "Exporting", r.text
    time.sleep(0.3)
    exports = srv.api.t("GET", f"/projects/{pid}/iterations/{first}/export").json()
    srv.kill()
    assert exports[0]["status"] == "Exporting", "the export finished before the kill; nothing to test"

    srv = ServeProcess(path)
    second = srv.api.t("POST", f"/projects/{pid}/train", params={"forceTrain": "true"}).json()
    assert second["status"] == "Training", second
    time.sleep(0.5)
    srv.kill()
    return {"path": path, "pid": pid, "confirmed": info["hashes"], "exported": first, "killed": second["id"]}


def test_images_and_labels_survive_kills_during_training_and_export(interrupted):
    ws = Workspace(interrupted["path"])
    _assert_consistent(ws)
    _assert_confirmed_present(ws, interrupted["pid"], interrupted["confirmed"])
    assert ws.get_iteration(interrupted["pid"], interrupted["exported"]).status == "Completed"
    ws.close()


def test_next_server_start_reports_interrupted_training_and_export(interrupted):
    pid = interrupted["pid"]
    with ServeProcess(interrupted["path"]) as srv:
        it = srv.api.t("GET", f"/projects/{pid}/iterations/{interrupted['killed']}").json()
        exports = srv.api.t("GET", f"/projects/{pid}/iterations/{interrupted['exported']}/export").json()
    assert it["status"] == "Failed", it
    assert exports and all(e["status"] == "Failed" for e in exports), exports


def test_core_recovery_marks_interrupted_work_failed_with_a_reason(interrupted):
    from cvlab import training
    ws = Workspace(interrupted["path"])
    pid = interrupted["pid"]
    training.recover_interrupted(ws)
    ws.recover_interrupted_exports()
    it = ws.get_iteration(pid, interrupted["killed"])
    assert it.status == "Failed" and it.training_error_details
    exports = ws.get_exports(pid, interrupted["exported"])
    assert exports and all(e.status == "Failed" and "Interrupted" in (e.error or "") for e in exports)
    assert training.recover_interrupted(ws) == [] and ws.recover_interrupted_exports() == []  # idempotent
    report = ws.check(repair=True)
    assert report["ok"]
    _assert_confirmed_present(ws, pid, interrupted["confirmed"])
    ws.close()
    with ServeProcess(interrupted["path"]) as srv:  # a new export of the same pair is no longer "in progress"
        r = srv.api.t("POST", f"/projects/{pid}/iterations/{interrupted['exported']}/export",
                      params={"platform": "ONNX"})
        assert r.status_code == 200 and r.json()["status"] == "Exporting", r.text


# ---- migration -------------------------------------------------------------------------------------------------
MIGRATOR = textwrap.dedent("""
    import sys
    import cvlab.workspace as w
    # A next schema version whose migration takes long enough to be killed in the middle of it.
    w.MIGRATIONS[w.SCHEMA_VERSION + 1] = (
        "ALTER TABLE images ADD COLUMN note TEXT; UPDATE images SET note = 'migrated'; "
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 300000000) SELECT count(*) FROM c")
    w.SCHEMA_VERSION += 1
    print("migrating", flush=True)
    w.Workspace(sys.argv[1])
    print("migrated", flush=True)
""")


def test_sigkill_during_a_migration_leaves_the_previous_schema_intact(tmp_path):
    path = tmp_path / "ws"
    ws = Workspace(path)
    p = ws.create_project("migrate")
    tag = ws.create_tag(p.id, "t")
    from cvlab.workspace import ImageEntry
    data = [png(32, 32, seed=i) for i in range(6)]
    ws.create_images(p.id, [ImageEntry(d, f"{i}.png", [tag.id]) for i, d in enumerate(data)])
    version = ws.schema_version
    before = snapshot(ws)
    ws.close()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", MIGRATOR, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "migrating"
    time.sleep(1.0)  # inside the migration's transaction
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    ws = Workspace(path)
    assert ws.schema_version == version
    assert "note" not in {r[1] for r in ws._q("PRAGMA table_info(images)")}  # all or nothing
    assert snapshot(ws) == before
    assert ws.check()["ok"]
    ws.close()


def test_sigkill_while_creating_a_workspace_leaves_one_that_opens(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    for delay in (0.0, 0.05, 0.2):
        path = tmp_path / f"ws{delay}"
        proc = subprocess.Popen([sys.executable, "-c", "import sys, cvlab.workspace as w; w.Workspace(sys.argv[1])",
                                 str(path)], env=env)
        time.sleep(delay + 0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        ws = Workspace(path)
        assert ws.check()["ok"] and ws.get_projects() == []
        ws.close()


# ---- full disk -------------------------------------------------------------------------------------------------
def test_disk_full_during_an_upload_is_error_storage_per_image(tmp_path, monkeypatch):
    """Blob writes fail with ENOSPC for some images: those get ErrorStorage, the rest land, nothing half-written
    is left, and the same images upload once space is back."""
    import builtins

    import cvlab.workspace.blobs as wsmod  # the module that writes image files
    from cvlab.service import start_background
    ws = Workspace(tmp_path / "ws")
    handle = start_background(ws, rate_limits=False)
    try:
        api = Api(handle.endpoint, handle.training_key, handle.prediction_key)
        pid = api.t("POST", "/projects", params={"name": "full"}).json()["id"]
        tag = api.t("POST", f"/projects/{pid}/tags", params={"name": "t"}).json()["id"]
        batch = [png(40, 40, seed=7000 + i) for i in range(8)]
        doomed = {_hash(b) for b in batch[::2]}
        real_open = builtins.open

        def full_disk_open(file, mode="r", *a, **kw):
            name = os.path.basename(str(file))
            if "w" in mode and name.endswith(".part") and name.split(".")[0] in doomed:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
            return real_open(file, mode, *a, **kw)

        monkeypatch.setattr(wsmod, "open", full_disk_open, raising=False)
        body = {"images": [{"name": f"{i}.png", "contents": base64.b64encode(b).decode()}
                           for i, b in enumerate(batch)], "tagIds": [tag]}
        r = api.t("POST", f"/projects/{pid}/images/files", json=body)
        assert r.status_code == 207, r.text
        statuses = [e["status"] for e in r.json()["images"]]
        assert statuses == ["ErrorStorage", "OK"] * 4
        report = ws.check()
        assert report["ok"] and report["counts"]["images"] == 4, report  # no row without its blob, no temp file
        r = api.t("POST", f"/projects/{pid}/images", data=batch[0],
                  headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 207 and r.json()["images"][0]["status"] == "ErrorStorage"
        monkeypatch.undo()  # space is back
        r = api.t("POST", f"/projects/{pid}/images/files", json=body)
        assert r.status_code == 207, r.text  # duplicates make a batch "not successful", as on Azure
        assert sorted(e["status"] for e in r.json()["images"]) == ["OK"] * 4 + ["OKDuplicate"] * 4
        assert api.t("GET", f"/projects/{pid}/images/count").json() == 8
        assert ws.check()["ok"]
    finally:
        handle.stop()
        ws.close()


def test_a_stuck_server_can_be_asked_for_its_thread_stacks(tmp_path):
    """`kill -USR1` makes `cvlab serve` print every thread's stack and keep serving (how a hang is diagnosed)."""
    with ServeProcess(tmp_path / "ws") as srv:
        stacks = srv.dump_stacks()
        assert "most recent call first" in stacks and "serve_forever" in stacks, stacks[-2000:]
        assert srv.api.healthy()

"""Core recovery and integrity: exports left Exporting by a killed process, killed exports' build folders,
and the CLI's report of both."""
from __future__ import annotations

import json

import pytest

from cvlab.errors import CvlabError
from cvlab.workspace import Workspace

COMPACT = "0732100f-1a38-4e49-a514-c9b44c697ab5"


@pytest.fixture
def completed(tmp_path):
    ws = Workspace(tmp_path / "ws")
    p = ws.create_project("rel", domain_id=COMPACT)
    it = ws.create_iteration(p.id)
    ws.update_iteration(p.id, it.id, status="Completed")
    yield ws, p, it
    ws.close()


def test_recover_interrupted_exports_fails_only_the_stuck_ones(completed):
    ws, p, it = completed
    stuck = ws.create_export(p.id, it.id, "ONNX")
    running = ws.create_export(p.id, it.id, "TensorFlow", "TensorFlowLite")
    done = ws.create_export(p.id, it.id, "DockerFile", "Linux")
    ws.update_export(done.id, status="Done", download_uri="exports/x.zip", path="exports/x.zip")
    with pytest.raises(CvlabError) as e:  # while it looks in progress, the same export cannot start again
        ws.create_export(p.id, it.id, "ONNX")
    assert e.value.code == "BadRequestExportAlreadyInProgress"
    assert ws.recover_interrupted_exports(running=[running.id]) == [stuck.id]
    assert ws.get_export(stuck.id).status == "Failed" and "Export the iteration again" in ws.get_export(stuck.id).error
    assert ws.get_export(running.id).status == "Exporting" and ws.get_export(done.id).status == "Done"
    again = ws.create_export(p.id, it.id, "ONNX")  # and now it can
    assert again.status == "Exporting"
    assert ws.recover_interrupted_exports(running=[running.id, again.id]) == []


def test_check_reports_a_killed_exports_build_folder_and_repair_removes_it(completed):
    ws, p, it = completed
    leftover = ws.path / "exports" / "tmpk1ll3d"
    (leftover / "export").mkdir(parents=True)
    (leftover / "export" / "model.onnx").write_bytes(b"half")
    ex = ws.create_export(p.id, it.id, "ONNX")
    with ws.job_lease(ex.id):  # an export is running (its job holds the lease): its folder may be in use
        assert ws.check()["export_temp_dirs"] == []
    ws.recover_interrupted_exports()
    report = ws.check()
    assert report["export_temp_dirs"] == ["tmpk1ll3d"] and not report["ok"] and report["repairable"]
    assert ws.get_export(ex.id).status == "Failed"
    fixed = ws.check(repair=True)
    assert fixed["ok"] and fixed["repaired"]["temp_files"] == 1 and not leftover.exists()
    assert ws.check()["ok"]


def test_doctor_prints_the_report_and_fails_on_leftovers(completed, capsys):
    from cvlab.cli import main
    ws, p, it = completed
    (ws.path / "blobs" / "tmp" / "abc.part").write_bytes(b"x")
    assert main(["doctor", "--workspace", str(ws.path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["temp_files"] == ["abc.part"] and report["repairable"]
    assert main(["doctor", "--workspace", str(ws.path), "--repair"]) == 0
    assert json.loads(capsys.readouterr().out)["repaired"]["temp_files"] == 1


def _fill_db_to_its_page_limit(ws):
    """SQLite's own limit as a full disk: the database may not grow by a single page any more."""
    conn = ws._conn()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")


def test_full_database_fails_each_image_with_error_storage_and_keeps_the_workspace_consistent(tmp_path):
    import hashlib

    from cvlab.workspace import ImageEntry
    from helpers import png
    ws = Workspace(tmp_path / "ws")
    p = ws.create_project("full")
    tag = ws.create_tag(p.id, "t")
    kept = ws.create_images(p.id, [ImageEntry(png(24, 24, seed=i), f"{i}.png", [tag.id]) for i in range(3)])
    before = {im.id: im.sha256 for im in ws.iter_images(p.id)}
    _fill_db_to_its_page_limit(ws)
    batch = [ImageEntry(png(24, 24, seed=100 + i), "x" * 200 + f"{i}.png", [tag.id]) for i in range(64)]
    s = ws.create_images(p.id, batch)
    assert not s.is_batch_successful and {r.status for r in s.images} == {"ErrorStorage"}
    assert "full" in s.images[0].message and "Free some space" in s.images[0].message
    with pytest.raises(CvlabError) as e:  # any other write: a clear 507, nothing half-done
        for n in range(200):
            ws.create_tag(p.id, f"tag-{n}-" + "y" * 200)
    assert e.value.status == 507 and "disk is full" in e.value.message
    report = ws.check()
    assert report["ok"], report  # no row without its blob, no orphan blob of the refused batch
    assert {im.id: im.sha256 for im in ws.iter_images(p.id)} == before
    for im in ws.iter_images(p.id):
        assert hashlib.sha256(ws.image_path(im).read_bytes()).hexdigest() == im.sha256
    ws._conn().execute("PRAGMA max_page_count = 1073741823")  # space is back
    s = ws.create_images(p.id, batch)
    assert s.is_batch_successful and ws.get_image_count(p.id) == 3 + 64
    assert len(kept.images) == 3 and ws.check()["ok"]
    ws.close()

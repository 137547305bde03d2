"""Issue 22's second wave: exports deleted with their project, orphaned export files, stuck jobs seen without a
restart, an import killed midway, bounded connections, bad records on disk, image names, `$filter` quoting and
depth. Each test reproduced its finding on main as a strict xfail before the fix (3fd02c6..fb95921). Bounded,
real SQLite, real servers on 127.0.0.1."""
from __future__ import annotations

import json
import time

import pytest

from cvlab.errors import CvlabError
from cvlab.workspace import ImageEntry, Workspace
from helpers import Api, png

COMPACT = "0732100f-1a38-4e49-a514-c9b44c697ab5"  # General (compact): its iterations export


def _done_export(ws, project_id, iteration_id, token="t0kenOfAnExport0000000000000000"):
    """An export as the exporter leaves it: a Done row and its zip under exports/."""
    export = ws.create_export(project_id, iteration_id, "ONNX")
    zip_path = ws.path / "exports" / f"{token}.zip"
    zip_path.parent.mkdir(exist_ok=True)
    zip_path.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    ws.update_export(export.id, status="Done", download_uri=f"exports/{token}.zip", path=f"exports/{token}.zip")
    return zip_path, token


def test_deleting_a_project_deletes_its_exports_and_revokes_their_links(ws):
    from cvlab.export import export_file
    p = ws.create_project("gone", domain_id=COMPACT)
    it = ws.create_iteration(p.id)
    ws.update_iteration(p.id, it.id, status="Completed")
    zip_path, token = _done_export(ws, p.id, it.id)
    ws.delete_project(p.id)
    assert not zip_path.exists()
    with pytest.raises(CvlabError):
        export_file(ws, token)


def test_doctor_finds_and_repairs_orphaned_export_files(ws):
    orphan = ws.path / "exports" / "orphanedExportZip000000000000000.zip"
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    report = ws.check()
    assert not report["ok"] and report["repairable"]
    assert ws.check(repair=True)["ok"] and not orphan.exists()


def test_doctor_reports_stuck_iterations_and_exports_without_a_restart(ws):
    p = ws.create_project("stuck", domain_id=COMPACT)
    done = ws.create_iteration(p.id)
    ws.update_iteration(p.id, done.id, status="Completed")
    export = ws.create_export(p.id, done.id, "ONNX")  # Exporting, and no process is exporting it
    it = ws.create_iteration(p.id)  # Training, and no process is training it
    report = json.dumps(ws.check(), default=str)
    assert it.id in report and export.id in report


@pytest.mark.slow
def test_an_import_killed_midway_leaves_no_half_project(tmp_path):
    from cvlab.service.process import ServeProcess
    path = tmp_path / "ws"
    ws = Workspace(path)
    p = ws.create_project("source")
    tag = ws.create_tag(p.id, "t")
    for start in range(0, 320, 64):
        ws.create_images(p.id, [ImageEntry(png(48, 48, seed=i), f"{i}.png", [tag.id]) for i in range(start, start + 64)])
    ws.close()
    srv = ServeProcess(path, "--no-rate-limit")
    api = Api(srv.endpoint, srv.training_key, srv.prediction_key)
    token = api.t("GET", f"/projects/{p.id}/export").json()["token"]
    import threading
    threading.Thread(target=lambda: api.t("POST", "/projects/import", params={"token": token, "name": "copy"},
                                          timeout=120), daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill once the copy holds some images, not all
        copy = [x for x in api.t("GET", "/projects").json() if x["name"] == "copy"]
        if copy and 0 < api.t("GET", f"/projects/{copy[0]['id']}/images/count").json() < 320:
            break
        time.sleep(0.02)
    srv.kill()
    ws = Workspace(path)
    copies = [x for x in ws.get_projects() if x.name == "copy"]
    assert not copies or ws.get_image_count(copies[0].id) == 320 or not ws.check()["ok"]
    ws.close()


def test_database_connections_stay_bounded_whatever_the_number_of_threads_and_seats(tmp_path):
    """The server's 40 long-lived worker threads each kept a SQLite connection (3 descriptors: db, -wal, -shm) to
    every seat workspace they touched: 30 seats ran out of the usual 1,024 descriptors. 10 workspaces x 20
    threads here: a pool would hold a few connections per workspace, not one per thread."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import psutil
    seats = [Workspace(tmp_path / f"seat-{i:02d}") for i in range(10)]
    for ws in seats:
        ws.create_project("p")
    me = psutil.Process()
    before = me.num_fds()
    barrier = threading.Barrier(20)

    def touch_all(_):
        barrier.wait(30)  # 20 distinct threads, all alive at once
        for ws in seats:
            ws.get_projects()
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(touch_all, range(20)))
        grown = me.num_fds() - before  # measured while the pool's threads still live, as a server's do
    for ws in seats:
        ws.close()
    assert grown <= 10 * 3 * 4, f"{grown} descriptors for 10 workspaces"


_ROOM_UNDER_256 = r"""
import resource, sys, threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from cvlab import workshop
from cvlab.workspace import Workspace

_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # macOS's default, a quarter of Linux's usual 1,024
room = Workspace(Path(sys.argv[1]))
seats = [workshop.open_seat(room, s.name) for s in workshop.create_seats(room, 30)]  # as the server keeps them
barrier = threading.Barrier(40)
errors = []

def seat_round(_):
    barrier.wait(60)  # the server's 40 worker threads, all alive at once, each serving every seat
    for ws in seats:
        try:
            ws.get_projects()
        except Exception as e:
            errors.append(repr(e))

for _ in range(2):  # the finding failed in the second round
    with ThreadPoolExecutor(40) as pool:
        list(pool.map(seat_round, range(40)))
print(len(errors), errors[:3])
"""


def test_a_class_of_30_seats_stays_under_a_256_descriptor_limit(tmp_path):
    """The finding at room scale: every worker thread kept a SQLite connection to every seat it touched, so 40
    threads x 30 seats needed thousands of descriptors (34 of 1,200 `GET /projects` answered 500 "unable to open
    database file" under the usual 1,024). Here, in a child process under macOS's default limit of 256, 40 live
    threads read all 30 seats twice: no error (before pooling: "unable to open database file")."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _ROOM_UNDER_256, str(tmp_path / "room")], capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0] == "0", out.stdout[-1000:]


def test_a_bad_record_on_disk_is_skipped_and_the_rest_still_listed(tmp_path):
    from cvlab.service import start_background
    ws = Workspace(tmp_path / "ws")
    p = ws.create_project("p")
    made = ws.create_images(p.id, [ImageEntry(png(24, 24, seed=i), f"{i}.png") for i in range(3)]).images
    conn = ws._conn()
    conn.execute("UPDATE images SET metadata = ? WHERE id = ?", ('{"note": "q\\ud800"}', made[0].image.id))
    conn.commit()
    with start_background(ws, rate_limits=False) as handle:
        api = Api(handle.endpoint, handle.training_key, handle.prediction_key)
        r = api.t("GET", f"/projects/{p.id}/images")
        assert r.status_code == 200 and len(r.json()) >= 2, r.text[:300]
    ws.close()


@pytest.mark.parametrize("name", ["a\x00b.jpg", "line\nbreak.jpg", "x" * 5000 + ".jpg", "q\ud800.jpg"])
def test_image_names_are_checked_like_other_names(ws, name):
    p = ws.create_project("names")
    summary = ws.create_images(p.id, [ImageEntry(png(24, 24), name)])
    stored = [i.original_name for i in ws.get_images(p.id)]
    if stored:  # refused, or kept only once made a valid one-line name
        assert all(len(n) <= 256 and n.isprintable() for n in stored), stored
    else:
        assert not summary.is_batch_successful


def test_a_filter_value_may_contain_and(ws):
    p = ws.create_project("f")
    made = ws.create_images(p.id, [ImageEntry(png(24, 24), "a.png")], metadata={"note": "salt and pepper"})
    assert [i.id for i in ws.get_images(p.id, filter="note eq 'salt and pepper'")] == [made.images[0].image.id]


def test_a_filter_of_two_thousand_terms_is_a_400(ws):
    p = ws.create_project("f")
    with pytest.raises(CvlabError) as e:
        ws.get_images(p.id, filter=" and ".join(["k eq 'v'"] * 2001))
    assert e.value.status == 400

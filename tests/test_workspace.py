"""Workspace: projects, tags, images, labels, iterations, predictions, exports, settings, schema, integrity."""
from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
import threading

import pytest

import cvlab
from cvlab import CvlabError, ImageEntry, Workspace
from cvlab.domains import find_domain

OD = find_domain("General", "ObjectDetection").id
COMPACT = find_domain("General (compact)").id


def code_of(excinfo) -> str:
    return excinfo.value.code


# ---- projects -------------------------------------------------------------------------------------------------------
def test_project_crud_and_defaults(ws):
    p = ws.create_project("Parts", "sorting parts")
    assert p.project_type == "Classification" and p.classification_type == "Multiclass"
    assert p.domain_id == "ee85a74c-405e-4adc-bb47-ffa8ca0c9f31" and p.status == "Succeeded"
    assert p.created.tzinfo is not None
    assert ws.get_project(p.id) == p and ws.find_project("parts") == p
    assert [x.id for x in ws.get_projects()] == [p.id]
    q = ws.update_project(p.id, name="Parts 2", classification_type="Multilabel", domain_id=COMPACT,
                          target_export_platforms=["ONNX", "TensorFlow"])
    assert (q.name, q.classification_type, q.domain_id, q.target_export_platforms) == \
        ("Parts 2", "Multilabel", COMPACT, ["ONNX", "TensorFlow"])
    assert q.last_modified >= p.last_modified
    ws.delete_project(p.id)
    with pytest.raises(CvlabError) as e:
        ws.get_project(p.id)
    assert code_of(e) == "NotFoundProject" and e.value.status == 404


@pytest.mark.parametrize("kwargs, code", [
    (dict(name=""), "BadRequestProjectName"),
    (dict(name="x" * 300), "BadRequestProjectName"),
    (dict(name="a\nb"), "BadRequestProjectName"),
    (dict(name="ok", domain_id="not-a-guid"), "BadRequestProjectUnknownDomain"),
    (dict(name="ok", domain_id="00000000-0000-0000-0000-000000000000"), "BadRequestProjectUnknownDomain"),
    (dict(name="ok", domain_id="45badf75-3591-4f26-a705-45678d3e9f5f"), "BadRequestProjectUnknownDomain"),
    (dict(name="ok", classification_type="Multi"), "BadRequestProjectUnknownClassification"),
    (dict(name="ok", target_export_platforms=["ONNX"]), "BadRequestProjectUnsupportedExportPlatform"),
    (dict(name="ok", domain_id=COMPACT, target_export_platforms=["Zip"]), "BadRequestProjectUnsupportedExportPlatform"),
])
def test_project_bad_input(ws, kwargs, code):
    with pytest.raises(CvlabError) as e:
        ws.create_project(**kwargs)
    assert code_of(e) == code and e.value.message


def test_project_name_unique_type_change_and_tier_limit(ws):
    p = ws.create_project("A")
    with pytest.raises(CvlabError) as e:
        ws.create_project("a")
    assert code_of(e) == "BadRequestProjectNameNotUnique"
    with pytest.raises(CvlabError) as e:
        ws.update_project(p.id, domain_id=OD)
    assert code_of(e) == "BadRequestProjectUnsupportedDomainTypeChange"
    ws.set_tier("F0")
    ws.create_project("B")
    with pytest.raises(CvlabError) as e:
        ws.create_project("C")
    assert code_of(e) == "BadRequestExceedProjectLimit" and "F0" in e.value.message
    with pytest.raises(CvlabError) as e:
        ws.get_project("nope")
    assert code_of(e) == "BadRequestInvalidIds"


# ---- tags -----------------------------------------------------------------------------------------------------------
def test_tag_rules(ws):
    p = ws.create_project("P")
    t = ws.create_tag(p.id, "cat", "felines")
    assert (t.name, t.type, t.image_count) == ("cat", "Regular", 0)
    with pytest.raises(CvlabError) as e:
        ws.create_tag(p.id, "CAT")
    assert code_of(e) == "BadRequestTagNameNotUnique"
    neg = ws.create_tag(p.id, "Negative", type="Negative")
    with pytest.raises(CvlabError) as e:
        ws.create_tag(p.id, "none", type="Negative")
    assert code_of(e) == "BadRequestMultipleNegativeTag"
    with pytest.raises(CvlabError) as e:
        ws.create_tag(p.id, "x", type="Weird")
    assert code_of(e) == "BadRequestTagType"
    with pytest.raises(CvlabError) as e:
        ws.update_tag(p.id, t.id, type="Negative")
    assert code_of(e) == "BadRequestMultipleNegativeTag"
    assert ws.update_tag(p.id, t.id, name="kitten").name == "kitten"
    assert ws.resolve_tag(p.id, "KITTEN").id == t.id == p.tag(t.id).id
    ws.delete_tag(p.id, neg.id)
    assert [x.name for x in ws.get_tags(p.id)] == ["kitten"]
    with pytest.raises(CvlabError) as e:
        ws.get_tag(p.id, neg.id)
    assert code_of(e) == "NotFoundTag"
    od = ws.create_project("D", domain_id=OD)
    with pytest.raises(CvlabError) as e:
        ws.create_tag(od.id, "Negative", type="Negative")
    assert code_of(e) == "BadRequestTagType"
    ws.set_tier("F0")
    for i in range(49):
        ws.create_tag(p.id, f"t{i}")
    with pytest.raises(CvlabError) as e:
        ws.create_tag(p.id, "one-too-many")
    assert code_of(e) == "BadRequestExceedTagPerProjectLimit"


# ---- images ---------------------------------------------------------------------------------------------------------
def test_at_most_100_tags_per_image(ws, jpeg_bytes):
    """Azure's per-image tag limit: an upload with 101 tags is refused per image, and tagging past 100 changes nothing."""
    p = ws.create_project("P", classification_type="Multilabel")
    tags = [ws.create_tag(p.id, f"t{i:03d}").id for i in range(101)]
    s = ws.create_images(p.id, [ImageEntry(jpeg_bytes(seed=1), "many.jpg", tags)])
    assert s.images[0].status == "ErrorTagLimitExceed" and ws.get_image_count(p.id) == 0
    img = ws.create_images(p.id, [ImageEntry(jpeg_bytes(seed=2), "full.jpg", tags[:100])]).images[0].image
    assert len(img.tags) == 100
    with pytest.raises(CvlabError) as e:
        ws.create_image_tags(p.id, [(img.id, tags[100])])
    assert code_of(e) == "BadRequestExceedTagPerImageLimit"
    assert len(ws.get_image(p.id, img.id).tags) == 100


def test_batch_statuses_like_azure(ws, jpeg_bytes):
    p = ws.create_project("P", classification_type="Multiclass")
    cat, dog = ws.create_tag(p.id, "cat"), ws.create_tag(p.id, "dog")
    neg = ws.create_tag(p.id, "Negative", type="Negative")
    good = jpeg_bytes(seed=1)
    entries = [
        ImageEntry(good, "good.jpg", [cat.id]),
        ImageEntry(good, "again.jpg", [dog.id]),  # same bytes -> OKDuplicate, labels unchanged
        ImageEntry(b"not an image", "bad.jpg"),
        ImageEntry(jpeg_bytes(seed=2), "two.jpg", [cat.id, dog.id]),  # multiclass: one tag
        ImageEntry(jpeg_bytes(seed=3), "neg.jpg", [neg.id, cat.id]),
        ImageEntry(jpeg_bytes(seed=4), "ghost.jpg", ["00000000-0000-0000-0000-000000000001"]),
        ImageEntry(jpeg_bytes(seed=5), "plain.jpg"),
    ]
    s = ws.create_images(p.id, entries)
    got = [(r.source_url, r.status) for r in s.images]
    assert got == [("good.jpg", "OK"), ("again.jpg", "OKDuplicate"), ("bad.jpg", "ErrorImageFormat"),
                   ("two.jpg", "ErrorTagLimitExceed"), ("neg.jpg", "ErrorNegativeAndRegularTagOnSameImage"),
                   ("ghost.jpg", "ErrorInvalidTag"), ("plain.jpg", "OK")]
    assert not s.is_batch_successful
    assert s.images[1].image.id == s.images[0].image.id and s.images[1].image.tag_names == ["cat"]
    assert all(r.message for r in s.images if r.status != "OK")
    img = s.images[0].image
    assert (img.width, img.height, img.format, img.original_name) == (320, 240, "JPEG", "good.jpg")
    assert img.sha256 == hashlib.sha256(good).hexdigest() == hashlib.sha256(ws.read_image_bytes(img)).hexdigest()
    assert ws.get_image_count(p.id) == 2
    assert ws.get_image_count(p.id, tagging_status="Tagged") == 1
    assert ws.get_image_count(p.id, tagging_status="Untagged") == 1
    assert ws.get_tag(p.id, cat.id).image_count == 1
    assert ws.create_images(p.id, [ImageEntry(jpeg_bytes(seed=9), "x", [cat.id])]).is_batch_successful


def test_batch_size_limits_and_region_geometry(ws, jpeg_bytes):
    p = ws.create_project("P")
    with pytest.raises(CvlabError) as e:
        ws.create_images(p.id, [jpeg_bytes(seed=i, w=8, h=8) for i in range(65)])
    assert code_of(e) == "BadRequestExceededBatchSize"
    with pytest.raises(CvlabError) as e:
        ws.create_images(p.id, [])
    assert code_of(e) == "BadRequestImageBatch"
    tags = [ws.create_tag(p.id, f"t{i}").id for i in range(21)]
    with pytest.raises(CvlabError) as e:
        ws.create_images(p.id, [jpeg_bytes()], tag_ids=tags)
    assert code_of(e) == "BadRequestImageBatch"
    od = ws.create_project("D", domain_id=OD)
    box = ws.create_tag(od.id, "box")
    for bad in ({"left": 0.8, "top": 0, "width": 0.3, "height": 0.1}, {"left": 0, "top": 0, "width": -1, "height": 1},
                {"left": "a", "top": 0, "width": 1, "height": 1}):
        with pytest.raises(CvlabError) as e:
            ws.create_images(od.id, [ImageEntry(jpeg_bytes(), regions=[{"tag_id": box.id, **bad}])])
        assert code_of(e) == "BadRequestImageRegions"
    assert ws.get_image_count(od.id) == 0  # nothing half-written


def test_detection_regions_and_labels(ws, jpeg_bytes):
    p = ws.create_project("D", domain_id=OD)
    assert p.project_type == "ObjectDetection"
    helmet, vest = ws.create_tag(p.id, "helmet"), ws.create_tag(p.id, "vest")
    reg = {"tag_id": helmet.id, "left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4}
    s = ws.create_images(p.id, [ImageEntry(jpeg_bytes(seed=1), "a.jpg", regions=[reg]),
                                ImageEntry(jpeg_bytes(seed=2), "b.jpg", tag_ids=[helmet.id])])
    assert [r.status for r in s.images] == ["OK", "ErrorInvalidTag"]
    img = s.images[0].image
    assert img.tags == [] and [(r.tag_name, r.left, r.top, r.width, r.height) for r in img.regions] == \
        [("helmet", 0.1, 0.2, 0.3, 0.4)]
    out = ws.create_image_regions(p.id, [{"image_id": img.id, "tag_id": vest.id, "left": 0.5, "top": 0.5,
                                          "width": 0.5, "height": 0.5}, {"image_id": img.id, **reg}])
    assert len(out["created"]) == 1 and len(out["duplicated"]) == 1 and out["created"][0]["tag_name"] == "vest"
    assert ws.get_tag(p.id, vest.id).image_count == 1
    assert ws.get_image_count(p.id, tag_ids=[vest.id]) == 1
    ws.delete_image_regions(p.id, [out["created"][0]["region_id"]])
    assert ws.get_tag(p.id, vest.id).image_count == 0
    img2 = ws.set_image_labels(p.id, img.id, regions=[{**reg, "tag_id": vest.id}])
    assert [r.tag_name for r in img2.regions] == ["vest"]
    with pytest.raises(CvlabError) as e:
        ws.create_image_tags(p.id, [(img.id, helmet.id)])
    assert code_of(e) == "BadRequestImageTags"
    assert ws.get_image(p.id, img.id).tags == []  # rolled back


def test_image_tags_rules_and_atomic_relabel(ws, jpeg_bytes):
    p = ws.create_project("P", classification_type="Multiclass")
    a, b = ws.create_tag(p.id, "a"), ws.create_tag(p.id, "b")
    neg = ws.create_tag(p.id, "neg", type="Negative")
    ids = [r.image.id for r in ws.create_images(p.id, [jpeg_bytes(seed=i) for i in range(3)]).images]
    out = ws.create_image_tags(p.id, [(ids[0], a.id), {"image_id": ids[1], "tag_id": b.id}])
    assert len(out["created"]) == 2
    assert ws.create_image_tags(p.id, [(ids[0], a.id)])["duplicated"] == [{"image_id": ids[0], "tag_id": a.id}]
    with pytest.raises(CvlabError) as e:
        ws.create_image_tags(p.id, [(ids[0], b.id)])
    assert code_of(e) == "BadRequestImageTags"
    with pytest.raises(CvlabError) as e:
        ws.create_image_tags(p.id, [(ids[1], neg.id)])
    assert code_of(e) == "BadRequestNegativeAndRegularTagOnSameImage"
    with pytest.raises(CvlabError) as e:
        ws.set_image_labels(p.id, ids[0], tag_ids=[a.id, b.id])
    assert ws.get_image(p.id, ids[0]).tag_names == ["a"]  # unchanged after the refused relabel
    assert ws.set_image_labels(p.id, ids[0], tag_ids=[b.id]).tag_names == ["b"]
    assert ws.delete_image_tags(p.id, [ids[0]], [b.id]) == 1
    ws.update_project(p.id, classification_type="Multilabel")
    ws.create_image_tags(p.id, [(ids[2], a.id), (ids[2], b.id)])
    assert sorted(ws.get_image(p.id, ids[2]).tag_names) == ["a", "b"]
    with pytest.raises(CvlabError) as e:
        ws.create_image_tags(p.id, [(ids[0], "11111111-1111-1111-1111-111111111111")])
    assert code_of(e) == "NotFoundTag"
    with pytest.raises(CvlabError) as e:
        ws.get_image(p.id, "11111111-1111-1111-1111-111111111111")
    assert code_of(e) == "NotFoundImage"


def test_get_images_paging_order_filters_and_delete(ws, jpeg_bytes):
    p = ws.create_project("P")
    a = ws.create_tag(p.id, "a")
    first = ws.create_images(p.id, [jpeg_bytes(seed=i) for i in range(3)], tag_ids=[a.id])
    second = ws.create_images(p.id, [jpeg_bytes(seed=i) for i in range(3, 5)])
    order = [r.image.id for r in first.images + second.images]
    assert [i.id for i in ws.get_images(p.id, order_by="Oldest", take=256)] == order
    assert [i.id for i in ws.get_images(p.id, take=2, skip=1)] == order[::-1][1:3]
    assert [i.id for i in ws.iter_images(p.id, page=2)] == order
    assert {i.id for i in ws.get_images(p.id, tag_ids=[a.id])} == set(order[:3])
    assert len(ws.get_images(p.id, tagging_status="Untagged")) == 2
    assert [i.id for i in ws.get_images(p.id, image_ids=[order[4]])] == [order[4]]
    for bad in (dict(take=257), dict(skip=-1), dict(order_by="Random"), dict(tagging_status="Some")):
        with pytest.raises(CvlabError):
            ws.get_images(p.id, **bad)
    with pytest.raises(CvlabError) as e:
        ws.delete_images(p.id, [order[0], "22222222-2222-2222-2222-222222222222"])
    assert code_of(e) == "NotFoundImage" and ws.get_image_count(p.id) == 5
    img = ws.get_image(p.id, order[0])
    assert ws.delete_images(p.id, [order[0]]) == 1
    assert not ws.image_path(img).exists()
    assert ws.delete_images(p.id, all_images=True) == 4
    assert ws.check()["ok"]


def test_blob_shared_between_projects_is_kept(ws, jpeg_bytes):
    data = jpeg_bytes(seed=7)
    p1, p2 = ws.create_project("one"), ws.create_project("two")
    i1 = ws.create_images(p1.id, [data]).images[0].image
    ws.create_images(p2.id, [data])
    ws.delete_project(p1.id)
    assert ws.image_path(i1).exists()
    assert ws.open_image(i1).size == (320, 240)


def test_image_limit_per_project(ws, jpeg_bytes, monkeypatch):
    from cvlab import rules
    monkeypatch.setitem(rules.LIMITS, "images_per_project",
                        dataclasses.replace(rules.LIMITS["images_per_project"], f0=3))
    ws.set_tier("F0")
    p = ws.create_project("P")
    s = ws.create_images(p.id, [jpeg_bytes(seed=i, w=16, h=16) for i in range(5)])
    assert [r.status for r in s.images] == ["OK"] * 3 + ["ErrorLimitExceed"] * 2
    assert ws.get_image_count(p.id) == 3


def test_add_images_from_paths_folders_and_names(ws, jpeg_bytes, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(70):
        (folder / f"{i:03d}.jpg").write_bytes(jpeg_bytes(seed=i, w=16, h=16))
    (folder / "notes.txt").write_text("ignored")
    p = ws.create_project("P")
    s = p.add_images(folder, tags="gear")
    assert len(s.images) == 70 and s.is_batch_successful
    assert [t.name for t in p.tags()] == ["gear"] and p.tag("gear").image_count == 70
    s2 = ws.create_images_from_files(p.id, [folder / "000.jpg", tmp_path / "missing.jpg"])
    assert [r.status for r in s2.images] == ["OKDuplicate", "ErrorSource"]
    with pytest.raises(CvlabError):
        p.add_images([jpeg_bytes()], tags="ghost", create_missing_tags=False)


# ---- iterations, publishing, predictions, exports -------------------------------------------------------------------
def test_iterations_publish_and_exports(ws, jpeg_bytes):
    p = ws.create_project("P", domain_id=COMPACT)
    it = ws.create_iteration(p.id, seed=3)
    assert (it.name, it.status, it.domain_id, it.exportable, it.seed) == ("Iteration 1", "Training", COMPACT, True, 3)
    assert ws.iteration_dir(it.id).is_dir()
    with pytest.raises(CvlabError) as e:
        ws.publish_iteration(p.id, it.id, "model", "/subscriptions/x")
    assert code_of(e) == "BadRequestIterationIsNotTrained"
    with pytest.raises(CvlabError) as e:
        ws.create_export(p.id, it.id, "ONNX")
    assert code_of(e) == "BadRequestExportWhileTraining"
    it = ws.update_iteration(p.id, it.id, status="Completed", trained_at=it.created, training_time_in_minutes=1)
    assert it.status == "Completed" and it.trained_at == it.created
    with pytest.raises(CvlabError) as e:
        ws.update_iteration(p.id, it.id, colour="red")
    assert code_of(e) == "BadRequestInvalid"
    with pytest.raises(CvlabError) as e:
        ws.publish_iteration(p.id, it.id, "bad/name", "/subscriptions/x")
    assert code_of(e) == "BadRequestInvalidPublishName"
    it = ws.publish_iteration(p.id, it.id, "model", "/subscriptions/x")
    assert ws.find_published(p.id, "model").id == it.id and ws.find_published(p.id, "nope") is None
    it2 = ws.create_iteration(p.id, status="Completed")
    assert it2.name == "Iteration 2"
    with pytest.raises(CvlabError):
        ws.publish_iteration(p.id, it2.id, "model", "/subscriptions/x")
    ws.publish_iteration(p.id, it2.id, "model", "/subscriptions/x", overwrite=True)
    assert ws.get_iteration(p.id, it.id).publish_name is None
    with pytest.raises(CvlabError) as e:
        ws.delete_iteration(p.id, it2.id)
    assert code_of(e) == "BadRequestIterationIsPublished"
    ws.unpublish_iteration(p.id, it2.id)
    with pytest.raises(CvlabError) as e:
        ws.unpublish_iteration(p.id, it2.id)
    assert code_of(e) == "BadRequestIterationNotPublished"
    with pytest.raises(CvlabError) as e:
        ws.update_iteration(p.id, it2.id, name="Iteration 1")
    assert code_of(e) == "BadRequestIterationNameNotUnique"

    ex = ws.create_export(p.id, it.id, "TensorFlow", "TensorFlowLite")
    assert ex.status == "Exporting"
    with pytest.raises(CvlabError) as e:
        ws.create_export(p.id, it.id, "TensorFlow", "TensorFlowLite")
    assert code_of(e) == "BadRequestExportAlreadyInProgress"
    with pytest.raises(CvlabError) as e:
        ws.create_export(p.id, it.id, "ONNX", "Linux")
    assert code_of(e) == "BadRequestExportValidationFailed"
    (ws.export_dir(ex.id) / "model.tflite").write_bytes(b"x")
    ex = ws.update_export(ex.id, status="Done", path=f"exports/{ex.id}/model.tflite", download_uri="http://x")
    assert [e.status for e in ws.get_exports(p.id, it.id)] == ["Done"]

    sp = ws.store_prediction(p.id, it.id, jpeg_bytes(seed=11), [{"tag_id": "t", "probability": 0.9}], "app")
    assert sp.iteration_id == it.id and sp.width == 320
    assert [x.id for x in ws.query_predictions(p.id)] == [sp.id]
    assert ws.query_predictions(p.id, application="other") == []
    ws.delete_iteration(p.id, it.id)
    assert not (ws.path / "iterations" / it.id).exists() and not (ws.path / "exports" / ex.id).exists()
    assert ws.query_predictions(p.id)[0].id == sp.id  # predictions outlive their iteration
    assert ws.delete_predictions(p.id, [sp.id]) == 1
    with pytest.raises(CvlabError) as e:
        ws.delete_predictions(p.id, [])
    assert code_of(e) == "BadRequestPredictionIdsMissing"
    assert ws.check()["ok"]


def test_iteration_limit_and_non_compact_export(ws):
    p = ws.create_project("P")
    it = ws.create_iteration(p.id, status="Completed")
    with pytest.raises(CvlabError) as e:
        ws.create_export(p.id, it.id, "ONNX")
    assert code_of(e) == "BadRequestExportValidationFailed"
    for _ in range(19):
        ws.create_iteration(p.id)
    with pytest.raises(CvlabError) as e:
        ws.create_iteration(p.id)
    assert code_of(e) == "BadRequestExceedIterationPerProjectLimit"


# ---- settings, usage, schema ----------------------------------------------------------------------------------------
def test_settings_usage_and_reopen(tmp_path):
    from cvlab.workspace import SCHEMA_VERSION

    ws = Workspace(tmp_path / "w")
    assert ws.tier == "S0" and ws.schema_version == SCHEMA_VERSION
    ws.set_setting("keys", {"training": "abc"})
    ws.set_tier("F0")
    with pytest.raises(CvlabError):
        ws.set_tier("S9")
    assert ws.add_usage("predictions", 9_999) == 9_999
    ws.check_prediction_quota(1)
    ws.add_usage("predictions")
    with pytest.raises(CvlabError) as e:
        ws.check_prediction_quota(1)
    assert code_of(e) == "BadRequestExceededQuota"
    ws.close()
    again = cvlab.open_workspace(tmp_path / "w")
    assert again.get_setting("keys") == {"training": "abc"} and again.tier == "F0"
    conn = sqlite3.connect(again.db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    with pytest.raises(CvlabError):
        Workspace(tmp_path / "absent", create=False)


def test_threads_share_a_bounded_pool_of_connections(ws, jpeg_bytes):
    """Threads borrow pooled connections (one per statement or transaction) instead of keeping one each: four
    threads writing and reading at once all succeed, and the process never holds more than the pool's limit."""
    from cvlab.workspace.store import POOL
    p = ws.create_project("P")
    errors, peaks = [], []
    barrier = threading.Barrier(4)

    def worker(k):
        try:
            barrier.wait(timeout=10)  # all four alive at once
            for i in range(5):
                ws.create_images(p.id, [jpeg_bytes(seed=1000 * k + i, w=16, h=16)])
                ws.get_images(p.id)
                peaks.append(POOL.stats()["open"])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and ws.get_image_count(p.id) == 20
    assert max(peaks) <= POOL.limit
    idle = POOL.stats()["idle"]
    ws.close()
    assert POOL.stats()["idle"] < idle  # this workspace's idle connections were closed, not leaked


def test_check_reports_and_repairs_orphans(ws, jpeg_bytes):
    p = ws.create_project("P")
    img = ws.create_images(p.id, [jpeg_bytes(seed=1)]).images[0].image
    orphan = ws._write_blob("ab" * 32, b"stray")
    (ws.blobs_dir / "tmp" / "x.part").write_bytes(b"half")
    r = ws.check()
    assert not r["ok"] and r["repairable"] and r["orphan_blobs"] == ["ab" * 32] and r["temp_files"] == ["x.part"]
    r = ws.check(repair=True)
    assert r["ok"] and {k: n for k, n in r["repaired"].items() if n} == {"orphan_blobs": 1, "temp_files": 1}
    assert not orphan.exists()
    ws.image_path(img).write_bytes(b"tampered")
    r = ws.check()
    assert r["corrupt_blobs"] == [img.sha256] and not r["ok"]
    ws.image_path(img).unlink()
    assert ws.check(repair=True)["missing_blobs"] == [img.sha256]
    assert ws.get_image_count(p.id) == 1  # repair never deletes training images


def test_a_stored_prediction_whose_image_was_lost_is_dropped_by_repair(ws, jpeg_bytes):
    """Prediction images are not fsynced (a log, like their rows): after a power cut, repair drops the row whose
    image is gone; a prediction sharing its image with a training image is never dropped."""
    p = ws.create_project("P")
    preds = [{"tag_id": "t", "tag_name": "t", "tag_type": "Regular", "probability": 0.9, "bounding_box": None}]
    lost = ws.store_prediction(p.id, None, jpeg_bytes(seed=1), preds)
    kept = ws.store_prediction(p.id, None, jpeg_bytes(seed=2), preds)
    shared = ws.create_images(p.id, [jpeg_bytes(seed=3)]).images[0].image
    ws.store_prediction(p.id, None, jpeg_bytes(seed=3), preds)
    ws.blob_path(lost.sha256).unlink()  # what a power cut can do to an un-fsynced blob
    ws.image_path(shared).unlink()
    r = ws.check()
    assert not r["ok"] and r["repairable"] and set(r["missing_blobs"]) == {lost.sha256, shared.sha256}
    r = ws.check(repair=True)
    assert r["repaired"]["lost_predictions"] == 1 and r["missing_blobs"] == [shared.sha256] and not r["ok"]
    ids = {sp.id for sp in ws.query_predictions(p.id)}
    assert kept.id in ids and lost.id not in ids and len(ids) == 2 and ws.get_image_count(p.id) == 1


def test_a_stored_prediction_image_is_fsynced_when_it_becomes_training_data(ws, jpeg_bytes, monkeypatch):
    """The same bytes share one blob: a prediction's un-fsynced image added to training must reach the disk."""
    import os

    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd)))
    p = ws.create_project("P")
    data = jpeg_bytes(seed=4)
    preds = [{"tag_id": "t", "tag_name": "t", "tag_type": "Regular", "probability": 0.9, "bounding_box": None}]
    sp = ws.store_prediction(p.id, None, data, preds)
    blob = str(ws.blob_path(sp.sha256))
    assert blob not in synced and str(ws.blob_path(sp.sha256).parent) not in synced
    ws.create_images(p.id, [data])
    assert blob in synced and str(ws.blob_path(sp.sha256).parent) in synced


def test_project_convenience_methods(ws, jpeg_bytes):
    p = ws.create_project("P")
    assert repr(p).count("_ws") == 0 and "_ws" not in dataclasses.asdict(p)
    assert p == ws.get_project(p.id)
    p.create_tag("a")
    p.add_images([jpeg_bytes(seed=1)], tags=["a"])
    assert p.image_count() == 1 and len(p.images()) == 1 and p.iterations() == []
    with pytest.raises(CvlabError) as e:
        p.performance()
    assert code_of(e) == "NotFoundIteration"


def test_schema_version_newer_than_code_is_refused(tmp_path):
    ws = Workspace(tmp_path / "w")
    ws.create_project("kept")
    ws.close()
    conn = sqlite3.connect(tmp_path / "w" / "cvlab.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(CvlabError) as e:
        Workspace(tmp_path / "w")
    assert code_of(e) == "BadRequestNotSupported" and "Upgrade cvlab" in e.value.message
    conn = sqlite3.connect(tmp_path / "w" / "cvlab.db")
    assert conn.execute("SELECT name FROM projects").fetchall() == [("kept",)]  # nothing lost
    conn.close()


def test_a_version_1_workspace_upgrades_and_loses_only_the_unused_quiz_table(tmp_path, jpeg_bytes):
    """Schema 1 had a quiz_results table nothing read (quiz progress is a setting); migration 2 drops it and
    keeps every project, image, label and setting."""
    from cvlab.workspace import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "w"
    path.mkdir()
    conn = sqlite3.connect(path / "cvlab.db")
    conn.executescript(MIGRATIONS[1] + "; PRAGMA user_version = 1;")
    conn.execute("INSERT INTO quiz_results(quiz_id, question_id, answer, correct, created) VALUES "
                 "('q1', 'a', '\"B\"', 1, '2026-01-01T00:00:00+00:00')")
    conn.commit()
    conn.close()
    ws = Workspace(path)
    assert ws.schema_version == SCHEMA_VERSION >= 2
    p = ws.create_project("P")
    tag = ws.create_tag(p.id, "t")
    ws.create_images(p.id, [ImageEntry(jpeg_bytes(), tag_ids=[tag.id])])
    ws.set_setting("quiz_progress", {"q1": {"correct": True}})
    ws.close()
    again = Workspace(path)
    tables = {r[0] for r in again._q("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "quiz_results" not in tables and {"projects", "images", "settings"} <= tables
    assert again.get_image_count(p.id, tagging_status="Tagged") == 1
    assert again.get_setting("quiz_progress") == {"q1": {"correct": True}} and again.check()["ok"]
    again.close()


def test_metadata_and_filter_expression(ws, jpeg_bytes):
    p = ws.create_project("P")
    a = ws.create_images(p.id, [jpeg_bytes(seed=1)], metadata={"camera": "line 2", "shift": "day"}).images[0].image
    b = ws.create_images(p.id, [jpeg_bytes(seed=2)], metadata={"camera": "line 1"}).images[0].image
    assert a.metadata == {"camera": "line 2", "shift": "day"}
    assert [i.id for i in ws.get_images(p.id, filter="camera eq 'line 2'")] == [a.id]
    assert [i.id for i in ws.get_images(p.id, filter="camera ne 'line 2'")] == [b.id]
    assert ws.get_image_count(p.id, filter="camera eq 'line 1' AND shift ne 'day'") == 1
    ws.update_image_metadata(p.id, [b.id], {"shift": "day", "note": "it's"})
    assert ws.get_image_count(p.id, filter="shift eq 'day' and note eq 'it''s'") == 1
    with pytest.raises(CvlabError) as e:
        ws.get_images(p.id, filter="camera = 1")
    assert code_of(e) == "BadRequestInvalid"


def test_project_copies_and_pickles_keep_their_workspace(ws):
    import copy
    import pickle
    p = ws.create_project("P")
    assert copy.deepcopy(p).workspace is ws and copy.copy(p).workspace is ws
    q = pickle.loads(pickle.dumps(p))
    assert q == p and q.workspace.path == ws.path and q.tags() == []
    q.workspace.close()


def test_domains_through_the_workspace(ws):
    od = next(d for d in ws.get_domains() if d.type == "ObjectDetection" and d.name == "General")
    p = ws.create_project("D", domain_id=od)  # a Domain object is accepted as well as its id
    assert p.project_type == "ObjectDetection" and ws.get_domain(p.domain_id) == od == p.domain


def test_stored_predictions_expire_after_30_days(ws, jpeg_bytes):
    from datetime import timedelta
    p = ws.create_project("P")
    old = ws.store_prediction(p.id, None, jpeg_bytes(seed=1), [])
    assert ws.expire_predictions(now=old.created + timedelta(days=29)) == 0
    assert ws.expire_predictions(now=old.created + timedelta(days=31)) == 1
    assert ws.query_predictions(p.id) == [] and not ws.image_path(old).exists()


def test_project_performance_and_widgets_are_bound(ws, jpeg_bytes):
    """project.performance() reads the latest Completed iteration's evaluation.json; widgets get the project."""
    import json
    p = ws.create_project("P")
    a, b = p.create_tag("a"), p.create_tag("b")
    ims = [p.add_images([jpeg_bytes(seed=i)], tags=[t.name]).images[0].image for i, t in enumerate([a, b, a, b])]
    it = ws.create_iteration(p.id, status="Completed")
    records = [{"image_id": im.id, "split": "cv", "fold": k % 2,
                "truth": {"tag_ids": [im.tags[0].tag_id], "regions": []},
                "predictions": [{"tag_id": im.tags[0].tag_id, "probability": 0.9, "bounding_box": None},
                                {"tag_id": (b if im.tags[0].tag_id == a.id else a).id, "probability": 0.1,
                                 "bounding_box": None}]} for k, im in enumerate(ims)]
    (ws.iteration_dir(it.id) / "evaluation.json").write_text(json.dumps({
        "project_type": "Classification", "classification_type": "Multiclass", "k_folds": 2,
        "tags": [{"id": t.id, "name": t.name, "type": "Regular"} for t in (a, b)], "records": records}))
    perf = p.performance(threshold=0.5)
    assert perf.precision == pytest.approx(1.0) and perf.recall == pytest.approx(1.0)
    pytest.importorskip("ipywidgets")
    assert p.tagger() is not None
    assert ws.create_project("D", domain_id=OD).box_labeler() is not None


def test_storage_failure_is_reported_per_image(ws, jpeg_bytes):
    """A blob that cannot be written (here: its folder is a file) is ErrorStorage; the rest of the batch lands."""
    import hashlib as h
    p = ws.create_project("P")
    bad, good = jpeg_bytes(seed=1), jpeg_bytes(seed=2)
    sha = h.sha256(bad).hexdigest()
    assert sha[:2] != h.sha256(good).hexdigest()[:2]
    (ws.blobs_dir / sha[:2]).write_bytes(b"in the way")
    s = ws.create_images(p.id, [ImageEntry(bad, "bad.jpg"), ImageEntry(good, "good.jpg")])
    assert [r.status for r in s.images] == ["ErrorStorage", "OK"] and "disk" in s.images[0].message
    assert ws.get_image_count(p.id) == 1 and not list((ws.blobs_dir / "tmp").iterdir())


def test_busy_and_damaged_databases_give_clear_errors(tmp_path):
    ws = Workspace(tmp_path / "w", busy_timeout=0.2)
    other = sqlite3.connect(ws.db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    with pytest.raises(CvlabError) as e:
        ws.create_project("P")
    assert code_of(e) == "Conflict" and e.value.status == 409
    other.execute("ROLLBACK")
    other.close()
    assert ws.create_project("P").name == "P"
    ws.close()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "cvlab.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CvlabError) as e:
        Workspace(tmp_path / "bad")
    assert code_of(e) == "ErrorUnknown" and "backup" in e.value.message

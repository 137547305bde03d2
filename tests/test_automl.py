"""Notebook 09's library part: a cvlab project written as Azure ML AutoML-for-images data (JSONL + MLTable +
job), validated against the JSON schema written from Microsoft's "Data schemas to train computer vision models
with automated machine learning" page, for a multiclass, a multilabel and a detection project; COCO through
cvlab's one COCO writer; the Content Understanding analyzer body. No cloud call anywhere.
"""
from __future__ import annotations

import json

import pytest
import yaml

from cvlab import automl, datasets
from cvlab.datasets.importing import import_records
from cvlab.domains import find_domain
from cvlab.errors import CvlabError

# Microsoft's own sample lines from the schema page, one per task: the schema must accept what the page shows.
MS_URL = ("azureml://subscriptions/my-subscription-id/resourcegroups/my-resource-group/workspaces/my-workspace/"
          "datastores/my-datastore/paths/image_data/Image_01.jpg")
MS_SAMPLES = {
    "image_classification": {"image_url": MS_URL, "image_details": {"format": "jpg", "width": "400px",
                                                                   "height": "258px"}, "label": "can"},
    "image_classification_multilabel": {"image_url": MS_URL, "image_details": {"format": "jpg", "width": "397px",
                                                                               "height": "296px"},
                                        "label": ["can", "milk_bottle"]},
    "image_object_detection": {"image_url": MS_URL, "image_details": {"format": "jpg", "width": "499px",
                                                                     "height": "666px"},
                               "label": [{"label": "carton", "topX": 0.172, "topY": 0.153, "bottomX": 0.432,
                                          "bottomY": 0.659, "isCrowd": 0},
                                         {"label": "milk_bottle", "topX": 0.300, "topY": 0.566, "bottomX": 0.891,
                                          "bottomY": 0.735, "isCrowd": 0}]},
}


def _project(ws, dataset: str, count: int, *, holdout: int = 0, untagged: int = 0):
    info = datasets.info(dataset)
    project = ws.create_project(dataset, domain_id=find_domain("General (compact)", info.project_type).id,
                                classification_type=info.classification_type
                                if info.project_type == "Classification" else None)
    records = datasets.generate(dataset, count + untagged, seed=3, size=96)
    for r in records[count:]:
        r.tags, r.regions = [], []
    assert not import_records(ws, project.id, records).failed
    if holdout:
        ids = [im.id for im in ws.iter_images(project.id)][:holdout]
        ws.update_image_metadata(project.id, ids, {"holdout": "true"})
    return ws.get_project(project.id)


@pytest.mark.parametrize("task", sorted(MS_SAMPLES))
def test_microsofts_sample_lines_validate(task):
    assert automl.line_errors(MS_SAMPLES[task], task) == []
    others = [t for t in MS_SAMPLES if t != task]
    assert all(automl.line_errors(MS_SAMPLES[task], t) for t in others)  # the label shapes tell tasks apart


@pytest.mark.parametrize("bad, where", [
    ({"image_details": {"format": "jpg"}, "label": "can"}, "image_url"),
    ({"image_url": "https://example.com/a.jpg", "label": "can"}, "image_url"),
    ({"image_url": MS_URL, "label": ""}, "label"),
    ({"image_url": MS_URL, "label": "can", "image_details": {"format": "gif"}}, "format"),
    ({"image_url": MS_URL, "label": "can", "image_details": {"width": "-3px"}}, "width"),
    ({"image_url": MS_URL, "lable": "can"}, "lable"),
])
def test_schema_refuses_what_the_page_does_not_allow(bad, where):
    problems = automl.line_errors(bad, "image_classification")
    assert problems and any(where in p for p in problems), problems


def test_boxes_outside_the_image_or_inside_out_are_refused():
    line = json.loads(json.dumps(MS_SAMPLES["image_object_detection"]))
    line["label"][0]["bottomX"] = 1.2
    assert any("bottomX" in p for p in automl.line_errors(line, "image_object_detection"))
    line["label"][0].update(bottomX=0.1)        # inside [0, 1], but left of topX
    assert any("right of and below" in p for p in automl.line_errors(line, "image_object_detection"))


def _check_export(report, project, ws):
    assert report.task == automl.automl_task(project)
    for path in report.jsonl:
        assert automl.validate_jsonl(path, report.task) == [], path
    rows = [json.loads(x) for p in report.jsonl for x in p.read_text().splitlines()]
    for row in rows:  # every image_url names a file that was written
        name = row["image_url"].rsplit("/images/", 1)[1]
        assert (report.folder / "images" / name).is_file()
    table = yaml.safe_load((report.folder / "training-mltable-folder" / "MLTable").read_text())
    assert table["paths"] == [{"file": "./train_annotations.jsonl"}]
    assert table["transformations"][1]["convert_column_types"][0] == {"columns": "image_url",
                                                                      "column_type": "stream_info"}
    job = yaml.safe_load((report.folder / "automl-job.yml").read_text())
    assert job["task"] == report.task and job["target_column_name"] == "label"
    assert job["primary_metric"] == automl.PRIMARY_METRIC[report.task]
    return rows


def test_multiclass_project_with_negative_holdout_and_untagged(ws, tmp_path):
    project = _project(ws, "parts", 16, holdout=4, untagged=2)
    report = automl.export_automl(ws, project.id, tmp_path / "out")
    rows = _check_export(report, project, ws)
    assert report.task == "image_classification"
    assert (report.train_lines, report.validation_lines) == (12, 4) and report.skipped == {"untagged": 2}
    assert report.negative_as_class == sum(1 for r in rows if r["label"] == "Negative") > 0
    assert {r["label"] for r in rows} == {"ok", "cracked", "rusted", "Negative"}
    job = yaml.safe_load((report.folder / "automl-job.yml").read_text())
    assert job["validation_data"]["path"] == "./validation-mltable-folder"
    with pytest.raises(CvlabError, match="not empty"):
        automl.export_automl(ws, project.id, tmp_path / "out")     # never writes over an earlier export


def test_multilabel_project(ws, tmp_path):
    project = _project(ws, "parts-multilabel", 12)
    report = automl.export_automl(ws, project.id, tmp_path / "out")
    rows = _check_export(report, project, ws)
    assert report.task == "image_classification_multilabel" and report.validation_lines == 0
    assert any(len(r["label"]) > 1 for r in rows)
    assert not (report.folder / "validation-mltable-folder").exists()


def test_detection_project_boxes_are_the_regions_corners(ws, tmp_path):
    project = _project(ws, "site", 6)
    report = automl.export_automl(ws, project.id, tmp_path / "out")
    rows = _check_export(report, project, ws)
    assert report.task == "image_object_detection"
    image = ws.get_images(project.id, take=1, order_by="Oldest")[0]
    row = next(r for r in rows if r["image_details"]["width"] == image.width
               and len(r["label"]) == len(image.regions)
               and abs(r["label"][0]["topX"] - image.regions[0].left) < 1e-6)
    reg = image.regions[0]
    box = next(b for b in row["label"] if abs(b["topX"] - reg.left) < 1e-6 and abs(b["topY"] - reg.top) < 1e-6)
    assert box["bottomX"] == pytest.approx(min(1.0, reg.left + reg.width), abs=1e-6)
    assert box["bottomY"] == pytest.approx(min(1.0, reg.top + reg.height), abs=1e-6)


def test_coco_export_reuses_the_coco_writer_and_refuses_classification(ws, tmp_path):
    from pycocotools.coco import COCO

    site = _project(ws, "site", 4)
    out = automl.export_coco(ws, site.id, tmp_path / "coco")
    coco = COCO(str(out / "annotations.json"))
    assert len(coco.getImgIds()) == 4
    assert len(coco.getAnnIds()) == sum(len(im.regions) for im in ws.iter_images(site.id))
    parts = _project(ws, "parts", 4)
    with pytest.raises(CvlabError, match="bounding boxes"):
        automl.export_coco(ws, parts.id, tmp_path / "coco2")


def test_content_understanding_analyzer_describes_categories(ws):
    project = _project(ws, "parts", 4)
    body = automl.content_understanding_analyzer(project, {"ok": "a clean metal part", "cracked": "a part with "
                                                           "a visible crack", "rusted": "a part with rust"})
    field = body["fieldSchema"]["fields"]["Category"]
    assert body["baseAnalyzerId"] == "prebuilt-image"
    assert field["method"] == "classify" and field["enum"] == ["ok", "cracked", "rusted"]
    assert "visible crack" in field["description"]
    with pytest.raises(CvlabError, match="describe every category"):
        automl.content_understanding_analyzer(project, {"ok": " "})


def test_concept_map_cites_microsoft():
    assert len(automl.CONCEPTS) >= 10
    assert all(src.startswith("https://learn.microsoft.com/") for *_, src in automl.CONCEPTS)

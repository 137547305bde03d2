"""After Custom Vision: a cvlab project written as Azure Machine Learning AutoML-for-images training data, and
what Azure Content Understanding would be asked instead. Nothing here calls the cloud; it writes the files a
learner would upload and shows the requests they would send.

Microsoft's sources (each figure and key below comes from one of them):

* migration options: https://learn.microsoft.com/azure/ai-services/custom-vision-service/migration-options
* the JSONL schema: https://learn.microsoft.com/azure/machine-learning/reference-automl-images-schema
* the MLTable file and data assets: https://learn.microsoft.com/azure/machine-learning/how-to-prepare-datasets-for-automl-images
* the job (task, target_column_name, primary metric, limits, GPU compute, 20 % validation by default, at least
  10 images): https://learn.microsoft.com/azure/machine-learning/how-to-auto-train-image-models
* Content Understanding analyzers (``prebuilt-image``, fields with ``method: classify`` and ``enum``):
  https://learn.microsoft.com/azure/ai-services/content-understanding/concepts/analyzer-reference and the
  classifier page https://learn.microsoft.com/azure/ai-services/content-understanding/concepts/classifier

Folder written by :func:`export_automl` (the layout of Microsoft's fridge-items sample)::

    out/images/<file>                                   the original image bytes
    out/training-mltable-folder/{MLTable, train_annotations.jsonl}
    out/validation-mltable-folder/{MLTable, validation_annotations.jsonl}   only when images are held out
    out/images-data-asset.yml                           `az ml data create -f` for the image folder
    out/automl-job.yml                                  `az ml job create -f` for the training job
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from .errors import CvlabError

SCHEMA_PATH = Path(__file__).with_name("schemas") / "automl-images.schema.json"
SCHEMA_URL = "https://learn.microsoft.com/azure/machine-learning/reference-automl-images-schema"
DATASTORE = ("azureml://subscriptions/<subscription-id>/resourcegroups/<resource-group>/workspaces/<workspace>"
             "/datastores/workspaceblobstore/paths")
PRIMARY_METRIC = {"image_classification": "accuracy", "image_classification_multilabel": "iou",
                  "image_object_detection": "mean_average_precision"}
FORMATS = {"JPEG": "jpg", "PNG": "png", "BMP": "bmp", "TIFF": "tiff"}  # what the schema's format enum allows
MLTABLE = {  # Microsoft's MLTable for AutoML images, with the file name filled in
    "paths": [{"file": None}],
    "transformations": [
        {"read_json_lines": {"encoding": "utf8", "invalid_lines": "error", "include_path_column": False}},
        {"convert_column_types": [{"columns": "image_url", "column_type": "stream_info"}]},
    ],
}


def automl_task(project) -> str:
    """The AutoML task a Custom Vision project becomes (CLI v2 ``task:`` / SDK v2 ``automl.<task>()``)."""
    if project.project_type == "ObjectDetection":
        return "image_object_detection"
    return "image_classification_multilabel" if project.classification_type == "Multilabel" else "image_classification"


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def line_errors(row: dict, task: str) -> list[str]:
    """Why one JSONL line is not valid AutoML data for ``task`` (empty: valid). The JSON schema, plus the one rule
    a schema cannot state: a box's bottom-right corner lies right of and below its top-left corner."""
    import jsonschema

    if task not in PRIMARY_METRIC:
        raise CvlabError("BadRequestInvalid", f"task {task!r}: use one of {', '.join(PRIMARY_METRIC)}")
    problems = []
    spec = dict(schema())
    spec.pop("oneOf")
    spec["$ref"] = f"#/$defs/{task}"
    for error in sorted(jsonschema.Draft202012Validator(spec).iter_errors(row), key=lambda e: list(e.path)):
        problems.append(f"{'/'.join(map(str, error.absolute_path)) or '(line)'}: {error.message}")
    if task == "image_object_detection" and not problems:
        for i, box in enumerate(row["label"]):
            if not (box["bottomX"] > box["topX"] and box["bottomY"] > box["topY"]):
                problems.append(f"label/{i}: bottomX/bottomY must be right of and below topX/topY, got {box}")
    return problems


def validate_jsonl(path: str | Path, task: str) -> list[str]:
    """Every problem in a JSONL file, as ``file:line: where: what`` (empty: the file is valid)."""
    path = Path(path)
    problems = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            problems.append(f"{path.name}:{number}: empty line (MLTable reads with invalid_lines: error)")
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as e:
            problems.append(f"{path.name}:{number}: not JSON ({e.msg})")
            continue
        problems += [f"{path.name}:{number}: {p}" for p in line_errors(row, task)]
    return problems


def _box(region) -> dict:
    """A Custom Vision region (left, top, width, height as fractions) as AutoML's corner ratios."""
    clip = lambda v: round(min(1.0, max(0.0, v)), 6)  # noqa: E731
    return {"label": region.tag_name, "topX": clip(region.left), "topY": clip(region.top),
            "bottomX": clip(region.left + region.width), "bottomY": clip(region.top + region.height), "isCrowd": 0}


def image_line(image, task: str, url: str) -> dict | None:
    """One image's JSONL line, or None when AutoML has nothing to learn from it (untagged; no boxes)."""
    details = {"format": FORMATS.get((image.format or "JPEG").upper(), "jpg"), "width": image.width,
               "height": image.height}
    if task == "image_object_detection":
        boxes = [_box(r) for r in image.regions]
        return {"image_url": url, "image_details": details, "label": boxes} if boxes else None
    names = [t.tag_name for t in image.tags]
    if not names:
        return None
    if task == "image_classification":
        return {"image_url": url, "image_details": details, "label": names[0]}
    return {"image_url": url, "image_details": details, "label": names}


@dataclass
class AutomlExport:
    """What :func:`export_automl` wrote, and what it left out (and why)."""

    folder: Path
    task: str
    train_lines: int = 0
    validation_lines: int = 0
    skipped: dict = field(default_factory=dict)       # reason -> count
    negative_as_class: int = 0                        # multiclass Negative images written as a class
    files: list[Path] = field(default_factory=list)

    @property
    def jsonl(self) -> list[Path]:
        return [p for p in self.files if p.suffix == ".jsonl"]


def _safe_name(name: str, used: set) -> str:
    stem, dot, ext = (Path(name).name or "image.jpg").rpartition(".")
    stem = re.sub(r"[^\w.\-]", "_", stem if dot else ext) or "image"
    ext = ext.lower() if dot else "jpg"
    candidate, k = f"{stem}.{ext}", 1
    while candidate.lower() in used:
        candidate, k = f"{stem}-{k}.{ext}", k + 1
    used.add(candidate.lower())
    return candidate


def export_automl(ws, project_id: str, out: str | Path, *, datastore: str = DATASTORE,
                  folder: str | None = None, compute: str = "azureml:gpu-cluster") -> AutomlExport:
    """Write ``project_id`` as AutoML-for-images data in ``out`` (see the module docstring for the layout).

    Image URLs point at ``<datastore>/<folder>/images/<file>``, where the images land once the learner uploads
    ``out/images`` as a data asset. Images marked held out (metadata ``holdout=true``) become the validation set;
    without any, AutoML takes 20 % of the training data for validation itself. Images AutoML cannot learn from are
    counted in ``skipped``: untagged images, and detection images without boxes. A multiclass project's
    Negative images are kept as a class of their own (AutoML has no Negative tag; a class of "none of these"
    photos is how a multiclass model learns to say so); a multilabel Negative image is written with an empty list.
    """
    project = ws.get_project(project_id)
    task = automl_task(project)
    out = Path(out)
    folder = folder or re.sub(r"[^\w\-]", "-", project.name).strip("-").lower() or "cvlab-project"
    report = AutomlExport(folder=out, task=task)
    if out.exists() and any(out.iterdir()):
        raise CvlabError("BadRequest", f"{out} is not empty: choose a new folder for the export")
    (out / "images").mkdir(parents=True, exist_ok=True)
    negative = {t.name for t in ws.get_tags(project.id) if t.type == "Negative"}
    lines: dict[str, list[dict]] = {"train": [], "validation": []}
    used: set[str] = set()
    for image in ws.iter_images(project.id):
        name = _safe_name(image.original_name or image.id, used)
        row = image_line(image, task, f"{datastore}/{folder}/images/{name}")
        if row is None:
            reason = "untagged" if task != "image_object_detection" or not image.tags else "no boxes"
            report.skipped[reason] = report.skipped.get(reason, 0) + 1
            continue
        if task == "image_classification_multilabel" and negative.intersection(row["label"]):
            row["label"] = [n for n in row["label"] if n not in negative]
        elif task == "image_classification" and row["label"] in negative:
            report.negative_as_class += 1
        shutil.copyfile(ws.image_path(image), out / "images" / name)
        lines["validation" if image.metadata.get("holdout") == "true" else "train"].append(row)
    if not lines["train"]:
        raise CvlabError("BadRequest", f"project {project.name!r} has no labelled images to export")
    for split in ("train", "validation"):
        if not lines[split]:
            continue
        sub = out / ("training-mltable-folder" if split == "train" else "validation-mltable-folder")
        sub.mkdir()
        jsonl = sub / f"{split}_annotations.jsonl"
        jsonl.write_text("".join(json.dumps(r) + "\n" for r in lines[split]), encoding="utf-8")
        table = json.loads(json.dumps(MLTABLE))
        table["paths"][0]["file"] = f"./{jsonl.name}"
        (sub / "MLTable").write_text(yaml.safe_dump(table, sort_keys=False))
        report.files += [jsonl, sub / "MLTable"]
    report.train_lines, report.validation_lines = len(lines["train"]), len(lines["validation"])
    asset = {"name": f"{folder}-images", "description": f"images of the cvlab project {project.name}",
             "path": "./images", "type": "uri_folder"}
    (out / "images-data-asset.yml").write_text(yaml.safe_dump(asset, sort_keys=False))
    (out / "automl-job.yml").write_text(yaml.safe_dump(job_spec(project, task, compute, bool(lines["validation"])),
                                                       sort_keys=False))
    report.files += [out / "images-data-asset.yml", out / "automl-job.yml"]
    return report


def job_spec(project, task: str, compute: str, has_validation: bool) -> dict:
    """The AutoML job YAML (CLI v2): what `az ml job create --file automl-job.yml` would send."""
    spec = {"type": "automl", "experiment_name": f"cvlab-{project.name}",
            "description": f"AutoML for images, from the cvlab project {project.name}",
            "compute": compute, "task": task, "primary_metric": PRIMARY_METRIC[task], "target_column_name": "label",
            "training_data": {"path": "./training-mltable-folder", "type": "mltable"}}
    if has_validation:
        spec["validation_data"] = {"path": "./validation-mltable-folder", "type": "mltable"}
    spec["limits"] = {"timeout_minutes": 60, "max_trials": 10, "max_concurrent_trials": 2}
    return spec


def export_coco(ws, project_id: str, out: str | Path) -> Path:
    """The project as COCO (``annotations.json`` + ``images/``), through cvlab's one COCO writer. COCO holds
    boxes: classification projects are refused with the reason."""
    from .datasets.importing import export_project

    project = ws.get_project(project_id)
    if project.project_type != "ObjectDetection":
        raise CvlabError("BadRequest", "COCO stores bounding boxes; a classification project exports as AutoML "
                                       "JSONL (export_automl) or folder-per-tag (cvlab data export)")
    return export_project(ws, project.id, out, "coco")


def content_understanding_analyzer(project, descriptions: dict[str, str], analyzer_id: str | None = None) -> dict:
    """The analyzer definition Content Understanding would be sent (PUT /contentunderstanding/analyzers/{id}):
    a ``prebuilt-image`` analyzer with one field classified into the project's tags. Each category is described
    in words; no image is uploaded and nothing is trained."""
    missing = [name for name in descriptions if not descriptions[name].strip()]
    if missing:
        raise CvlabError("BadRequest", f"describe every category in words: {', '.join(missing)} has no description")
    lines = "; ".join(f"'{name}': {text.strip()}" for name, text in descriptions.items())
    return {
        "analyzerId": analyzer_id or re.sub(r"[^\w.\-]", "_", project.name),
        "description": f"Classifies photos like the Custom Vision project {project.name}",
        "baseAnalyzerId": "prebuilt-image",
        "fieldSchema": {"fields": {"Category": {
            "type": "string", "method": "classify", "enum": list(descriptions),
            "description": f"Which one of these the photo shows. {lines}"}}},
    }


_AUTOML = "https://learn.microsoft.com/azure/machine-learning/how-to-auto-train-image-models"
_PREPARE = "https://learn.microsoft.com/azure/machine-learning/how-to-prepare-datasets-for-automl-images"
_ONNX = "https://learn.microsoft.com/azure/machine-learning/how-to-inference-onnx-automl-image-models"

#: Custom Vision's concepts and their AutoML-for-images counterparts: (Custom Vision, AutoML, note, source).
CONCEPTS = [
    ("Training resource and project", "Azure Machine Learning workspace, an AutoML job in an experiment",
     "experiment_name groups the job's runs", _AUTOML),
    ("Project type: Multiclass / Multilabel / Object Detection",
     "task: image_classification / image_classification_multilabel / image_object_detection",
     "AutoML also has image_instance_segmentation", _AUTOML),
    ("Domain (General, Food, compact ...)", "the model architecture (training_parameters.model_name) or a sweep",
     "no domain catalogue: AutoML tries and tunes models", _AUTOML),
    ("Tags", "the label column (target_column_name: label)", "class names inside the JSONL", SCHEMA_URL),
    ("Regions: left, top, width, height", "label boxes: topX, topY, bottomX, bottomY",
     "both fractions of the image size; AutoML gives the two corners", SCHEMA_URL),
    ("Negative tag", "(none)", "in cvlab's export: a class of its own (multiclass), an empty list (multilabel)",
     SCHEMA_URL),
    ("Upload and tag images", "upload the images as a data asset, labels as JSONL wrapped in an MLTable",
     "or label them in Azure ML's data labeling tool", _PREPARE),
    ("At least 5 images per tag (15 for detection)", "at least 10 images to submit a job",
     "Microsoft recommends starting at 10-15 per label", _AUTOML),
    ("Quick or Advanced training, budget in hours", "limits: timeout_minutes, max_trials, max_concurrent_trials",
     "on GPU compute (NC or ND series)", _AUTOML),
    ("Iteration", "the job's trials; the best one's model", "", _AUTOML),
    ("Performance: precision, recall, AP, mAP", "primary_metric: accuracy / iou / mean_average_precision",
     "multiclass / multilabel / detection", _AUTOML),
    ("Validation (k-fold or a 20 % split)", "validation_data, else 20 % of the training data",
     "validation_data_size changes the share", _AUTOML),
    ("Export to ONNX", "the AutoML model's ONNX file", "run with onnxruntime, as in notebook 06", _ONNX),
]

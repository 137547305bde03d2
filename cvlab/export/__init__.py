"""Export an iteration as Azure does: ONNX, TensorFlow Lite or a Docker container app, as a zip holding
`cvexport.manifest`, `labels.txt` and `metadata_properties.json` beside the model.

Jobs run like Azure's: `export_iteration` records an export in `Exporting`, builds it (in a thread when
`background=True`), and ends `Done` with a download token or `Failed` with the reason. Only iterations of
compact domains export. The REST service serves `export_file(ws, token)` at the export's `downloadUri`.

Flavours beyond Azure's (in cvlab): TensorFlowLiteFloat16 and TensorFlowLiteInt8 (weight-only int8 on the
convolutions). There is no int8 ONNX flavour (Azure offers none either): cvlab's former ``OnnxInt8`` (static int8,
8-bit activations) changed the top tag of images whose two best tags are close, 6 of 32 held-out images in
benchmarks/export_speed.py (31 of 32 at best after tuning), so it was withdrawn; see benchmarks/export_speed.md.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import shutil
import tempfile
import threading
import zipfile
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from cvlab import rules
from cvlab.errors import CvlabError
from cvlab.jobs import Jobs
from cvlab.workspace.store import storage_problem

EXPORTER_VERSION = "2.2"
TFLITE_DETECTION_CANDIDATES = 100  # best-scored boxes the TFLite detector keeps through NMS
JOBS = Jobs("export")               # the exports this process builds, by export id


def export_iteration(ws, project_id: str, iteration_id: str, platform: str, flavor: str | None = None,
                     background: bool = False):
    """Start (or, when it already exists, return) the export of an iteration; returns the Export record.

    The workspace checks Azure's rules (trained, compact domain, known platform/flavor, not already running);
    this adds what cvlab cannot build offline."""
    builder = _builder(platform, flavor)
    project = ws.get_project(project_id)
    iteration = ws.get_iteration(project_id, iteration_id)
    for existing in ws.get_exports(project_id, iteration.id):
        if existing.platform == platform and existing.flavor == flavor and existing.status == "Done":
            return existing
    record = ws.create_export(project_id, iteration.id, platform, flavor)
    JOBS.register(record.id, lease=ws.job_lease(record.id))  # running: recovery and cvlab doctor leave it alone
    job = lambda: _run(ws, project, iteration, record, builder)  # noqa: E731
    if background:
        JOBS.submit(record.id, job)
        return record
    JOBS.run(record.id, job)
    return ws.get_export(record.id)


def get_exports(ws, project_id: str, iteration_id: str):
    """The iteration's exports (Exporting, Done or Failed)."""
    ws.get_iteration(project_id, iteration_id)
    return ws.get_exports(project_id, iteration_id)


def wait(ws, export_id: str, timeout: float = 600.0):
    """Block until a background export ends; returns its record."""
    JOBS.wait(export_id, timeout)
    return ws.get_export(export_id)


def running_jobs() -> list[str]:
    """Ids of the exports this process is still building (the rest of Exporting ones were interrupted)."""
    return JOBS.running()


def recover_interrupted(ws) -> list[str]:
    """At start-up: trainings and exports a stopped process left running end Failed, saying why, and a project
    import it left half-made is deleted (importing again gives the whole copy)."""
    from cvlab import training

    return (training.recover_interrupted(ws) + ws.recover_interrupted_exports(running=running_jobs())
            + ws.recover_interrupted_imports())


def export_file(ws, token: str) -> Path:
    """The zip behind a download token (tokens are random; unknown or malformed ones are NotFound). A link is
    good only while its export exists: deleting its project, iteration or seat revokes it."""
    if not token or not all(c.isalnum() or c in "-_" for c in token):
        raise CvlabError("NotFound", "Unknown export download link.")
    path = ws.export_download(token)
    if path is None:
        raise CvlabError("NotFound", "Unknown or expired export download link (or its export was deleted); export "
                         "the iteration again.")
    return path


def _builder(platform: str, flavor: str | None) -> tuple[str, str | None]:
    """(build kind, quantization) of a pair cvlab builds (``rules.EXPORT_FLAVORS``)."""
    row = rules.export_build(platform, flavor)
    return row.build, row.quantization


def _run(ws, project, iteration, record, builder) -> None:
    exports_dir = Path(ws.path) / "exports"
    final = exports_dir / f"{secrets.token_urlsafe(24)}.zip"
    try:
        exports_dir.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=exports_dir) as tmp:
            folder = Path(tmp) / "export"
            build(ws, project, iteration, record.platform, record.flavor, folder, builder)
            part = Path(tmp) / "export.zip"
            with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as zf:
                for path in sorted(folder.rglob("*")):
                    if path.is_file():
                        zf.write(path, path.relative_to(folder).as_posix())
            part.replace(final)  # atomic: a link never points at half a zip
        relative = f"exports/{final.name}"
        ws.update_export(record.id, status="Done", download_uri=relative, path=relative)
    except Exception as exc:  # noqa: BLE001 - the job records why it failed, as Azure's Failed status does
        final.unlink(missing_ok=True)  # e.g. its project was deleted meanwhile: no zip without its row
        with contextlib.suppress(CvlabError):  # NotFound: the export went with its project or iteration
            ws.update_export(record.id, status="Failed",
                             error=storage_problem(exc) or f"{type(exc).__name__}: {exc}")


def build(ws, project, iteration, platform: str, flavor: str | None, folder: Path,
          builder: tuple[str, str | None] | None = None) -> Path:
    """Write the export's files into `folder` (the zip's content); returns the model file. What the converters
    printed is kept beside the model (`conversion.log`), not shown."""
    from cvlab.export import convert

    with convert.collected_logs() as logs:
        model = _build(ws, project, iteration, platform, flavor, folder, builder)
    text = "".join(logs) or "(the converters printed nothing in this export)\n"
    (model.parent / convert.CONVERSION_LOG).write_text(text, encoding="utf-8")
    return model


def _build(ws, project, iteration, platform, flavor, folder, builder):
    from cvlab.export import convert
    from cvlab.predict import Predictor

    kind, quantization = builder or _builder(platform, flavor)
    predictor = Predictor.load(ws, iteration.id, backend="torch")
    labels = [t["name"] for t in predictor.tags]
    size = predictor.preprocessing.size
    target = folder / "app" if kind == "docker" else folder
    target.mkdir(parents=True, exist_ok=True)
    if kind == "onnx":
        model = target / "model.onnx"
        convert.to_onnx(predictor.module, predictor.project_type, size, labels, model)
        _copy_template("onnx", folder)
        pixel = "Rgb8"
    else:
        model = _cached_tflite(ws, iteration.id, predictor, quantization, target / "model.tflite")
        pixel = "Rgb8" if predictor.project_type == "ObjectDetection" else "Bgr8"  # as Azure's S1 / classifiers
        if kind == "docker":
            _copy_template("docker", folder)
            if flavor == "ARM":
                dockerfile = folder / "Dockerfile"
                dockerfile.write_text(dockerfile.read_text().replace(
                    "FROM python:3.11-slim-bookworm", "FROM --platform=linux/arm64 python:3.11-slim-bookworm"))
    (target / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    metadata = _metadata(predictor, pixel, "NHWC" if kind != "onnx" else "NCHW", quantization)
    (target / "metadata_properties.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    manifest = {
        "DomainType": predictor.project_type, "Platform": platform, "Flavor": flavor,
        "ExporterVersion": EXPORTER_VERSION,
        "ExportedDate": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "IterationId": iteration.id, "ProjectId": project.id, "ModelFileName": model.name,
        "LabelFileName": "labels.txt", "MetadataPropsFileName": "metadata_properties.json",
        "ModelFileSHA1": hashlib.sha1(model.read_bytes()).hexdigest(), "SchemaVersion": "1.0",
    }
    (target / "cvexport.manifest").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return model


def _cached_tflite(ws, iteration_id, predictor, quantization, dest: Path) -> Path:
    """TFLite conversion takes 20-30 s: convert once per iteration, derive fp16/int8 from that float file (a
    second or two instead of a second conversion) and reuse every variant for the Docker app."""
    from cvlab.export import convert

    # v2: detectors take RGB and name their outputs as Azure's S1; a detector cached before (BGR) must not be reused
    cache = Path(ws.iteration_dir(iteration_id)) / f"export-{quantization or 'float'}.v2.tflite"
    if not cache.exists():
        part = cache.with_name(f"{cache.name}.{threading.get_ident()}.tmp.tflite")
        if quantization is None:
            module = predictor.module
            if predictor.project_type == "ObjectDetection":  # TFLite needs fixed shapes: NMS as a fixed loop
                module = convert.StaticShapeDetector(module, TFLITE_DETECTION_CANDIDATES)
            convert.to_tflite(module, predictor.preprocessing.size, part)
        else:
            from ai_edge_quantizer import qtyping, quantizer, recipe

            float_file = cache.with_name("export-float.v2.tflite")
            if not float_file.exists():
                _cached_tflite(ws, iteration_id, predictor, None, part)
                part.unlink()
            with convert._quiet():
                result = convert._quantize_tflite(float_file, quantization, quantizer, recipe, qtyping)
            result.export_model(str(part))
        part.replace(cache)
    shutil.copyfile(cache, dest)
    return dest


def _metadata(predictor, pixel: str, layout: str, quantization: str | None) -> dict[str, str]:
    """metadata_properties.json, telling the truth about what the model expects (unlike some Azure exports)."""
    p = predictor.preprocessing
    if predictor.project_type == "ObjectDetection":
        method = "ObjectDetection.S1 (decoding and NMS inside the model)"
    elif predictor.classification_type == "Multilabel":
        method = "ClassificationMultiLabel"
    else:
        method = "ClassificationMultiClass"
    return {
        "CustomVision.Metadata.Version": "1.2",
        "CustomVision.Postprocess.Method": method,
        "CustomVision.Preprocess.CropMethod": "NoCrop",
        "CustomVision.Preprocess.CropWidth": "0", "CustomVision.Preprocess.CropHeight": "0",
        "CustomVision.Preprocess.ResizeMethod": "Stretch",
        "CustomVision.Preprocess.ResizeInterpolation": "Bilinear",
        "CustomVision.Preprocess.TargetWidth": str(p.size), "CustomVision.Preprocess.TargetHeight": str(p.size),
        "CustomVision.Preprocess.NormalizeMean": "[0.0,0.0,0.0]",
        "CustomVision.Preprocess.NormalizeStd": "[1.0,1.0,1.0]",
        "Image.BitmapPixelFormat": pixel, "Image.ColorSpaceGamma": "SRGB",
        "Image.NominalPixelRange": "NominalRange_0_255",
        "cvlab.InputLayout": layout,
        "cvlab.Quantization": quantization or "none",
        "cvlab.Note": "ImageNet mean/std normalisation is inside the model: feed raw pixels.",
        "cvlab.Tags": json.dumps([{"id": t["id"], "name": t["name"], "type": t.get("type", "Regular")}
                                  for t in predictor.tags]),
    }


def _copy_template(name: str, folder: Path) -> None:
    source = resources.files("cvlab.export") / "templates" / name
    with resources.as_file(source) as src:
        shutil.copytree(src, folder, dirs_exist_ok=True)

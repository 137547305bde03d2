"""Detection exports on the product path: the shared tiny ObjectDetection project (conftest's
``trained_discs_one_epoch``: 16 one-disc images, 1 epoch), exported with `cvlab.export.export_iteration` to
ONNX, TensorFlow Lite and the Docker app, each run in its real runtime (onnxruntime, ai-edge-litert, the container's Flask app in-process)
and compared with the Predictor that the Prediction API uses: same boxes (IoU >= 0.99, same tag) and
probabilities after the same threshold, as benchmarks/export_parity.py measures.

The TFLite conversion of the detector (fixed-shape NMS, `StaticShapeDetector`) is the slow part (~30 s of CPU);
it runs once here and the Docker export reuses it."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cvlab.datasets.swatches import disc_scene
from cvlab.export import TFLITE_DETECTION_CANDIDATES, convert, export_file, export_iteration
from cvlab.nets.preprocess import to_pil
from helpers import container_client
import parity

pytestmark = pytest.mark.slow
THRESHOLD = 0.5          # compare the boxes a client keeps (benchmarks/export_parity.py uses the same)
ONNX_TOLERANCE = 1e-4    # the fp32 ONNX target
TFLITE_TOLERANCE = 1e-3  # the TFLite target (a different kernel library: XNNPACK)


@pytest.fixture(scope="module")
def discs(trained_discs_one_epoch):
    """The 1-epoch detector with its torch Predictor's answers on 4 new scenes (what every export must match)."""
    from cvlab.predict import Predictor

    trained_discs = trained_discs_one_epoch
    predictor = Predictor.load(trained_discs["ws"], trained_discs["iteration"].id, backend="torch")
    images = [disc_scene(1000 + i)[0] for i in range(4)]
    reference = [predictor.predict(data) for data in images]
    assert all(any(p["probability"] >= THRESHOLD for p in ref) for ref in reference), "nothing to compare"
    return dict(trained_discs, predictor=predictor, images=images, reference=reference)


def unzip(ws, record, folder: Path) -> Path:
    assert record.status == "Done", record.error
    with zipfile.ZipFile(export_file(ws, Path(record.path).stem)) as zf:
        zf.extractall(folder)
    return folder


def assert_same_detections(reference: list[dict], got: list[dict], tolerance: float) -> int:
    """The boxes a client keeps (>= THRESHOLD) on either side have a partner on the other (same tag, IoU >= 0.99)."""
    return parity.assert_same_detections(reference, got, tolerance, threshold=THRESHOLD, min_iou=0.99)


def as_predictions(tags: list[dict], boxes, classes, scores) -> list[dict]:
    return parity.as_predictions([t["name"] for t in tags], boxes, classes, scores)


def check_zip_files(folder: Path, platform: str, model_name: str, labels: list[str]) -> dict:
    import hashlib

    manifest = json.loads((folder / "cvexport.manifest").read_text())
    assert manifest["DomainType"] == "ObjectDetection" and manifest["Platform"] == platform
    assert manifest["ModelFileName"] == model_name and manifest["LabelFileName"] == "labels.txt"
    assert manifest["ModelFileSHA1"] == hashlib.sha1((folder / model_name).read_bytes()).hexdigest()
    assert (folder / "labels.txt").read_text().splitlines() == labels
    meta = json.loads((folder / "metadata_properties.json").read_text())
    assert meta["CustomVision.Preprocess.TargetWidth"] == meta["CustomVision.Preprocess.TargetHeight"] == "320"
    assert meta["Image.NominalPixelRange"] == "NominalRange_0_255"
    return meta


def test_onnx_detection_export_is_azure_s1_and_agrees_with_predictor(discs, tmp_path):
    import onnx

    d = discs
    ws, predictor = d["ws"], d["predictor"]
    record = export_iteration(ws, d["project"].id, d["iteration"].id, "ONNX")
    folder = unzip(ws, record, tmp_path / "onnx")
    meta = check_zip_files(folder, "ONNX", "model.onnx", [t["name"] for t in predictor.tags])
    assert meta["Image.BitmapPixelFormat"] == "Rgb8" and meta["cvlab.InputLayout"] == "NCHW"
    # Azure's "S1" ONNX detector: image_tensor [1,3,320,320] float RGB 0-255 -> the three detected_* outputs
    model = onnx.load(str(folder / "model.onnx"))
    onnx.checker.check_model(model)
    (inp,) = model.graph.input
    assert inp.name == "image_tensor" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [dim.dim_value for dim in inp.type.tensor_type.shape.dim] == [1, 3, 320, 320]
    types = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    assert types == {"detected_boxes": onnx.TensorProto.FLOAT, "detected_classes": onnx.TensorProto.INT64,
                     "detected_scores": onnx.TensorProto.FLOAT}
    props = {p.key: p.value for p in model.metadata_props}
    assert props["Image.BitmapPixelFormat"] == "Rgb8" and props["Image.NominalPixelRange"] == "NominalRange_0_255"

    runner = convert.OnnxRunner(folder / "model.onnx")
    assert runner.outputs == ["detected_boxes", "detected_classes", "detected_scores"]
    compared = 0
    for data, reference in zip(d["images"], d["reference"]):
        boxes, classes, scores = runner(predictor.preprocessing.array(to_pil(data))[None])
        n = scores.shape[1]
        assert boxes.shape == (1, n, 4) and classes.shape == (1, n) and scores.shape == (1, n)
        assert ((boxes >= 0) & (boxes <= 1)).all() and (boxes[..., 2:] >= boxes[..., :2]).all()  # x1,y1,x2,y2
        assert (np.diff(scores[0]) <= 0).all()  # best first, as Azure's
        compared += assert_same_detections(reference, as_predictions(predictor.tags, boxes[0], classes[0],
                                                                     scores[0]), ONNX_TOLERANCE)
    assert compared >= len(d["images"])

    # the sample script in the zip runs on the detector as a learner would run it
    image_path = tmp_path / "probe.jpg"
    image_path.write_bytes(d["images"][0])
    out = subprocess.run([sys.executable, str(folder / "python" / "onnxruntime_predict.py"), str(folder / "model.onnx"),
                          str(folder / "labels.txt"), str(image_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    first = re.match(r"(.+): ([0-9.]+)% box x1,y1,x2,y2", out.stdout.splitlines()[0])
    assert first, out.stdout
    name, printed = first.group(1), float(first.group(2)) / 100  # 2 decimals of a percent: +-5e-5
    reference = d["reference"][0]  # the best box, or one tied with it within the ONNX tolerance
    assert printed >= reference[0]["probability"] - 2e-4
    assert any(r["tag_name"] == name and abs(r["probability"] - printed) <= 2e-4 for r in reference)


def test_tflite_detection_export_agrees_with_predictor(discs, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    d = discs
    ws, predictor = d["ws"], d["predictor"]
    record = export_iteration(ws, d["project"].id, d["iteration"].id, "TensorFlow", "TensorFlowLite")
    folder = unzip(ws, record, tmp_path / "tflite")
    meta = check_zip_files(folder, "TensorFlow", "model.tflite", [t["name"] for t in predictor.tags])
    assert meta["Image.BitmapPixelFormat"] == "Rgb8" and meta["cvlab.InputLayout"] == "NHWC"  # as Azure's S1
    interpreter = Interpreter(model_path=str(folder / "model.tflite"))
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, 320, 320, 3]
    shapes = sorted(o["shape"].tolist() for o in interpreter.get_output_details())
    k = TFLITE_DETECTION_CANDIDATES
    assert shapes == [[k], [k], [k, 4]]  # fixed-size S1 outputs of one image; empty slots score 0
    runner = convert.TFLiteRunner(folder / "model.tflite")
    compared = 0
    for data, reference in zip(d["images"], d["reference"]):
        boxes, classes, scores = runner(predictor.preprocessing.array(to_pil(data))[None])
        assert classes.dtype.kind in "iu"
        compared += assert_same_detections(reference, as_predictions(predictor.tags, boxes[0], classes[0],
                                                                     scores[0]), TFLITE_TOLERANCE)
    assert compared >= len(d["images"])


def test_docker_detection_app_answers_like_the_prediction_api(discs, tmp_path):
    d = discs
    ws, predictor, project = d["ws"], d["predictor"], d["project"]
    record = export_iteration(ws, project.id, d["iteration"].id, "DockerFile", "Linux")
    folder = unzip(ws, record, tmp_path / "docker")
    check_zip_files(folder / "app", "DockerFile", "model.tflite", [t["name"] for t in predictor.tags])
    client = container_client(folder / "app")
    assert client.get("/").get_data(as_text=True) == "CustomVision.ai model host harness"
    tag_ids = {t["name"]: t["id"] for t in predictor.tags}
    compared = 0
    for i, (data, reference) in enumerate(zip(d["images"], d["reference"])):
        if i % 2:
            reply = client.post("/image", data=data, content_type="application/octet-stream")
        else:
            reply = client.post(f"/{project.id}/detect/iterations/Iteration1/image",
                                data={"imageData": (io.BytesIO(data), "x.jpg")},
                                content_type="multipart/form-data")
        assert reply.status_code == 200, reply.get_data(as_text=True)
        body = reply.get_json()
        assert set(body) == {"id", "project", "iteration", "created", "predictions"}
        assert body["project"] == project.id and body["iteration"] == d["iteration"].id
        probabilities = [p["probability"] for p in body["predictions"]]
        assert probabilities == sorted(probabilities, reverse=True) and probabilities
        got = []
        for p in body["predictions"]:
            assert set(p) == {"probability", "tagId", "tagName", "tagType", "boundingBox"}
            assert p["tagId"] == tag_ids[p["tagName"]]  # the Prediction API's tag id (Azure's container: index)
            box = p["boundingBox"]
            assert set(box) == {"left", "top", "width", "height"}
            assert 0 <= box["left"] <= box["left"] + box["width"] <= 1 + 1e-6
            assert 0 <= box["top"] <= box["top"] + box["height"] <= 1 + 1e-6
            got.append({"tag_name": p["tagName"], "probability": p["probability"], "bounding_box": box})
        compared += assert_same_detections(reference, got, TFLITE_TOLERANCE)
    assert compared >= len(d["images"])
    bad = client.post("/image", data=b"not an image", content_type="application/octet-stream")
    assert bad.status_code == 400 and bad.get_json()["code"] == "BadRequestImageFormat"


def test_tflite_detection_runs_like_microsofts_s1_sample(discs, tmp_path):
    """What Microsoft's samples/python/tensorflow_lite/object_detection_s1/predict.py does with an Azure export:
    RGB 0-255 NHWC in, outputs read by name, each without a batch dimension."""
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image

    d = discs
    ws, predictor = d["ws"], d["predictor"]
    record = export_iteration(ws, d["project"].id, d["iteration"].id, "TensorFlow", "TensorFlowLite")
    folder = unzip(ws, record, tmp_path / "tflite")
    interpreter = Interpreter(model_path=str(folder / "model.tflite"))
    interpreter.allocate_tensors()
    (inp,), outputs = interpreter.get_input_details(), interpreter.get_output_details()
    assert {o["name"] for o in outputs} == {"detected_boxes", "detected_classes", "detected_scores"}
    for data, reference in zip(d["images"], d["reference"]):
        rgb = to_pil(data).resize(tuple(inp["shape"][1:3]), Image.BILINEAR)  # the sample: Pillow's default, bicubic
        interpreter.set_tensor(inp["index"], np.asarray(rgb, dtype=np.float32)[np.newaxis])
        interpreter.invoke()
        out = {o["name"]: interpreter.get_tensor(o["index"]) for o in outputs}
        assert out["detected_boxes"].ndim == 2 and out["detected_scores"].ndim == 1
        assert_same_detections(reference, as_predictions(predictor.tags, out["detected_boxes"],
                                                         out["detected_classes"], out["detected_scores"]),
                               TFLITE_TOLERANCE)

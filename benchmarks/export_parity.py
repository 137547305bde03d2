"""Do the exports agree with the published endpoint? Prints JSON.

The same images go through the local Prediction API (the official Azure SDK over HTTP), the exported ONNX model
(onnxruntime), the exported TensorFlow Lite model (ai-edge-litert) and the exported container app (its own HTTP
server). Reports the max probability difference from the endpoint, top-tag agreement, and for detection the share
of boxes above the threshold matched at IoU >= 0.99 with the same tag.

    python benchmarks/export_parity.py [--images 50] [--detection-images 20] [--skip-detection]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import requests

from cvlab import datasets
from cvlab.datasets.importing import import_records
from cvlab.domains import find_domain
from cvlab.export import convert, export_file, export_iteration
from cvlab.predict import Predictor
from cvlab.service import start_background
from cvlab.training import train_project
from cvlab.workspace import Workspace

THRESHOLD = 0.5


def jpeg(record) -> bytes:
    buffer = io.BytesIO()
    record.image.convert("RGB").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def unzip(ws, record, folder: Path) -> Path:
    assert record.status == "Done", record.error
    with zipfile.ZipFile(export_file(ws, Path(record.path).stem)) as zf:
        zf.extractall(folder)
    return folder


class Container:
    """The exported app/app.py, started with this Python on a free loopback port."""

    def __init__(self, folder: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = dict(os.environ, PORT=str(self.port), HOST="127.0.0.1")
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=folder / "app", env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                requests.get(self.url("/"), timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("container app did not start")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def predict(self, data: bytes) -> list[dict]:
        reply = requests.post(self.url("/image"), files={"imageData": ("x.jpg", data)}, timeout=60)
        reply.raise_for_status()
        return [{"tag_name": p["tagName"], "probability": p["probability"], "bounding_box": p["boundingBox"]}
                for p in reply.json()["predictions"]]

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


def setup_project(ws, name, dataset, count, domain_name, domain_type, seed=0):
    info = datasets.info(dataset)
    domain = find_domain(domain_name, domain_type)
    project = ws.create_project(name, domain_id=domain.id, classification_type=info.classification_type)
    import_records(ws, project.id, datasets.generate(dataset, count, seed=seed))
    started = time.perf_counter()
    iteration = train_project(ws, project.id, seed=seed, show_progress=False)
    assert iteration.status == "Completed", iteration.training_error_details
    ws.publish_iteration(project.id, iteration.id, "parity", "/subscriptions/local/resourceGroups/cvlab/providers/"
                         "Microsoft.CognitiveServices/accounts/cvlab-prediction")
    return project, iteration, time.perf_counter() - started


def endpoint_predictions(service, project, images, detect: bool):
    from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
    from msrest.authentication import ApiKeyCredentials

    client = CustomVisionPredictionClient(service.prediction_endpoint,
                                          ApiKeyCredentials(in_headers={"Prediction-key": service.prediction_key}))
    call = client.detect_image_with_no_store if detect else client.classify_image_with_no_store
    out = []
    for data in images:
        result = call(project.id, "parity", data)
        out.append([{"tag_name": p.tag_name, "probability": p.probability,
                     "bounding_box": p.bounding_box and {"left": p.bounding_box.left, "top": p.bounding_box.top,
                                                         "width": p.bounding_box.width,
                                                         "height": p.bounding_box.height}}
                    for p in result.predictions])
    return out


def runner_predictions(runner, predictor, images, detect: bool):
    """Raw exported-model outputs turned into the same prediction dicts as the endpoint's."""
    labels = [t["name"] for t in predictor.tags]
    out = []
    for data in images:
        x = predictor.preprocessing.array(predictor_image(data))[None]
        result = runner(x)
        if detect:
            boxes = next(a for a in result if a.ndim == 3)[0]
            classes = next(a for a in result if a.ndim == 2 and a.dtype.kind in "iu")[0]
            scores = next(a for a in result if a.ndim == 2 and a.dtype.kind == "f")[0]
            out.append([{"tag_name": labels[int(c)], "probability": float(s),
                         "bounding_box": {"left": float(b[0]), "top": float(b[1]), "width": float(b[2] - b[0]),
                                          "height": float(b[3] - b[1])}}
                        for b, c, s in zip(boxes, classes, scores) if s > 0])
        else:
            out.append([{"tag_name": labels[i], "probability": float(p), "bounding_box": None}
                        for i, p in enumerate(result[0][0])])
    return out


def predictor_image(data: bytes):
    from cvlab.nets.preprocess import to_pil

    return to_pil(data)


def iou(a, b) -> float:
    ax2, ay2, bx2, by2 = a["left"] + a["width"], a["top"] + a["height"], b["left"] + b["width"], b["top"] + b["height"]
    w = max(0.0, min(ax2, bx2) - max(a["left"], b["left"]))
    h = max(0.0, min(ay2, by2) - max(a["top"], b["top"]))
    inter = w * h
    union = a["width"] * a["height"] + b["width"] * b["height"] - inter
    return inter / union if union > 0 else 0.0


def compare(reference, candidate, detect: bool) -> dict:
    if not detect:
        diffs, agree = [], []
        for ref, got in zip(reference, candidate):
            ref_p = {p["tag_name"]: p["probability"] for p in ref}
            got_p = {p["tag_name"]: p["probability"] for p in got}
            diffs.append(max(abs(ref_p[t] - got_p[t]) for t in ref_p))
            agree.append(max(ref_p, key=ref_p.get) == max(got_p, key=got_p.get))
        return {"max_probability_diff": float(max(diffs)), "top_tag_agreement": float(np.mean(agree))}
    matched = total = extra = 0
    diffs = []
    for ref, got in zip(reference, candidate):
        ref_boxes = [p for p in ref if p["probability"] >= THRESHOLD]
        got_boxes = [p for p in got if p["probability"] >= THRESHOLD]
        used = set()
        for r in ref_boxes:
            total += 1
            best = max(((iou(r["bounding_box"], g["bounding_box"]), k) for k, g in enumerate(got_boxes)
                        if k not in used and g["tag_name"] == r["tag_name"]), default=(0.0, None))
            if best[0] >= 0.99:
                matched += 1
                used.add(best[1])
                diffs.append(abs(r["probability"] - got_boxes[best[1]]["probability"]))
        extra += len(got_boxes) - len(used)
    return {"boxes_above_threshold": total, "matched_iou_0_99": matched / total if total else None,
            "unmatched_extra_boxes": extra, "max_probability_diff": float(max(diffs)) if diffs else None}


def run_case(ws, service, tmp: Path, name, dataset, count, test_count, domain_name, domain_type, detect) -> dict:
    project, iteration, train_s = setup_project(ws, name, dataset, count, domain_name, domain_type)
    test_images = [jpeg(r) for r in datasets.generate(dataset, test_count, seed=999)]
    reference = endpoint_predictions(service, project, test_images, detect)
    predictor = Predictor.load(ws, iteration.id, backend="torch")
    result = {"train_images": count, "test_images": test_count, "train_seconds": round(train_s, 1)}
    for key, platform, flavor in (("onnx", "ONNX", None), ("tflite", "TensorFlow", "TensorFlowLite")):
        started = time.perf_counter()
        folder = unzip(ws, export_iteration(ws, project.id, iteration.id, platform, flavor), tmp / f"{name}-{key}")
        seconds = time.perf_counter() - started
        runner = (convert.OnnxRunner(folder / "model.onnx") if key == "onnx"
                  else convert.TFLiteRunner(folder / "model.tflite"))
        result[key] = dict(compare(reference, runner_predictions(runner, predictor, test_images, detect), detect),
                           export_seconds=round(seconds, 1))
    folder = unzip(ws, export_iteration(ws, project.id, iteration.id, "DockerFile", "Linux"), tmp / f"{name}-docker")
    container = Container(folder)
    try:
        result["container"] = compare(reference, [container.predict(d) for d in test_images], detect)
    finally:
        container.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--train-images", type=int, default=80)
    parser.add_argument("--detection-images", type=int, default=20)
    parser.add_argument("--detection-train-images", type=int, default=60)
    parser.add_argument("--skip-detection", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.set_tier("S0")
        with start_background(ws, rate_limits=False) as service:
            report = {"targets": {"onnx_max_diff": 1e-4, "tflite_max_diff": 1e-3, "top_tag_agreement": 1.0,
                                  "detection_box_iou": 0.99, "threshold": THRESHOLD}}
            report["classification"] = run_case(ws, service, Path(tmp), "parts", "parts", args.train_images,
                                                args.images, "General (compact)", "Classification", False)
            if not args.skip_detection:
                report["detection"] = run_case(ws, service, Path(tmp), "site", "site", args.detection_train_images,
                                               args.detection_images, "General (compact) [S1]", "ObjectDetection",
                                               True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

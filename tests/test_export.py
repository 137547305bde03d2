"""Exports: Azure-shaped zips, every error case, and parity of ONNX / TFLite / the container app with the
in-process Predictor that the endpoint uses."""
from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from cvlab.domains import find_domain
from cvlab.errors import CvlabError
from cvlab.export import convert, export_file, export_iteration, get_exports, wait
from parity import assert_same_top_tag

pytestmark = pytest.mark.slow


def unzip(ws, record, tmp_path) -> Path:
    assert record.status == "Done", record.error
    folder = tmp_path / record.platform
    with zipfile.ZipFile(export_file(ws, Path(record.path).stem)) as zf:
        zf.extractall(folder)
    return folder


def reference(ws, iteration, images):
    from cvlab.predict import Predictor

    predictor = Predictor.load(ws, iteration.id, backend="torch")
    batch = np.stack([predictor.preprocessing.array(Image.open(io.BytesIO(b)).convert("RGB")) for b in images])
    return predictor, batch, predictor.module(__import__("torch").from_numpy(batch)).detach().numpy()


def check_manifest(folder: Path, platform: str, model_name: str, labels: list[str]):
    manifest = json.loads((folder / "cvexport.manifest").read_text())
    for key in ("DomainType", "Platform", "Flavor", "ExporterVersion", "ExportedDate", "IterationId",
                "ModelFileName", "LabelFileName", "MetadataPropsFileName", "ModelFileSHA1", "SchemaVersion"):
        assert key in manifest, key
    assert manifest["Platform"] == platform and manifest["ModelFileName"] == model_name
    assert manifest["ModelFileSHA1"] == hashlib.sha1((folder / model_name).read_bytes()).hexdigest()
    assert (folder / "labels.txt").read_text().split() == labels
    return manifest, json.loads((folder / "metadata_properties.json").read_text())


def test_onnx_export_matches_azure_shape_and_predictor(trained_round_square, tmp_path):
    import onnx

    ws, project, iteration, images = trained_round_square
    record = export_iteration(ws, project.id, iteration.id, "ONNX")
    folder = unzip(ws, record, tmp_path)
    predictor, batch, expected = reference(ws, iteration, images)
    labels = [t["name"] for t in predictor.tags]
    manifest, meta = check_manifest(folder, "ONNX", "model.onnx", labels)
    assert manifest["DomainType"] == "Classification"
    assert meta["Image.BitmapPixelFormat"] == "Rgb8" and meta["Image.NominalPixelRange"] == "NominalRange_0_255"
    assert meta["CustomVision.Preprocess.TargetWidth"] == str(predictor.preprocessing.size)
    model = onnx.load(str(folder / "model.onnx"))
    onnx.checker.check_model(model)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["Image.BitmapPixelFormat"] == "Rgb8"
    assert [i.name for i in model.graph.input] == ["data"] and [o.name for o in model.graph.output] == ["model_output"]
    got = convert.OnnxRunner(folder / "model.onnx")(batch)[0]
    assert np.abs(got - expected).max() <= 1e-4
    assert_same_top_tag(got, expected, 1e-4)
    # the sample script in the zip runs as a learner would run it
    image_path = tmp_path / "probe.jpg"
    image_path.write_bytes(images[0])
    out = subprocess.run([sys.executable, str(folder / "python" / "onnxruntime_predict.py"), str(folder / "model.onnx"),
                          str(folder / "labels.txt"), str(image_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    name, printed = out.stdout.splitlines()[0].rsplit(": ", 1)  # the script's best tag (or one tied with it)
    assert expected[0][labels.index(name)] >= expected[0].max() - 1e-4
    assert abs(float(printed.rstrip("%")) / 100 - expected[0][labels.index(name)]) <= 2e-4  # +-5e-5 printed
    # exporting the same platform again returns the finished export instead of rebuilding it
    assert export_iteration(ws, project.id, iteration.id, "ONNX").id == record.id
    assert [e.status for e in get_exports(ws, project.id, iteration.id)] == ["Done"]


def test_tflite_export_nhwc_bgr_and_parity(trained_round_square, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    ws, project, iteration, images = trained_round_square
    record = export_iteration(ws, project.id, iteration.id, "TensorFlow", "TensorFlowLite", background=True)
    assert record.status == "Exporting"
    record = wait(ws, record.id)
    folder = unzip(ws, record, tmp_path)
    predictor, batch, expected = reference(ws, iteration, images)
    _, meta = check_manifest(folder, "TensorFlow", "model.tflite", [t["name"] for t in predictor.tags])
    assert meta["Image.BitmapPixelFormat"] == "Bgr8" and meta["cvlab.InputLayout"] == "NHWC"
    interpreter = Interpreter(model_path=str(folder / "model.tflite"))
    shape = interpreter.get_input_details()[0]["shape"].tolist()
    assert shape == [1, predictor.preprocessing.size, predictor.preprocessing.size, 3]
    got = convert.TFLiteRunner(folder / "model.tflite")(batch)[0]
    assert np.abs(got - expected).max() <= 1e-3
    assert np.allclose(got.sum(1), 1.0, atol=1e-4)  # softmax probabilities, as Azure's model_outputs
    assert_same_top_tag(got, expected, 1e-3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _ImageServer(BaseHTTPRequestHandler):
    payload = b""

    def do_GET(self):  # noqa: N802 - http.server API
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


def test_docker_app_serves_container_routes_with_parity(trained_round_square, tmp_path):
    ws, project, iteration, images = trained_round_square
    record = export_iteration(ws, project.id, iteration.id, "DockerFile", "Linux")
    folder = unzip(ws, record, tmp_path)
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    for expected_file in ("Dockerfile", "README.txt", "app/app.py", "app/predict.py", "app/requirements.txt",
                          "app/model.tflite", "app/labels.txt", "app/metadata_properties.json",
                          "app/cvexport.manifest", "deploy/kubernetes.yaml", "deploy/iotedge.deployment.json"):
        assert expected_file in names, expected_file
    dockerfile = (folder / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "COPY app/ /app/" in dockerfile and 'CMD ["python", "-u", "app.py"]' in dockerfile
    requirements = (folder / "app" / "requirements.txt").read_text()
    assert "tflite-runtime" not in requirements and "ai-edge-litert" in requirements
    json.loads((folder / "deploy" / "iotedge.deployment.json").read_text())

    port = free_port()
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1")
    server = subprocess.Popen([sys.executable, "app.py"], cwd=folder / "app", env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if requests.get(base + "/", timeout=1).text == "CustomVision.ai model host harness":
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail("container app did not start: " + server.stdout.read1().decode(errors="replace"))
        predictor, batch, expected = reference(ws, iteration, images)
        for i, data in enumerate(images):
            route = "/image" if i % 2 else f"/{project.id}/classify/iterations/Iteration1/image"
            reply = requests.post(base + route, files={"imageData": ("x.jpg", data)}, timeout=30)
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert set(body) >= {"id", "project", "iteration", "created", "predictions"}
            by_name = {p["tagName"]: p["probability"] for p in body["predictions"]}
            for j, tag in enumerate(predictor.tags):
                assert abs(by_name[tag["name"]] - expected[i][j]) <= 1e-3
            top = next(j for j, t in enumerate(predictor.tags) if t["name"] == body["predictions"][0]["tagName"])
            assert expected[i][top] >= expected[i].max() - 1e-3  # the top tag, or one tied with it
            assert body["predictions"][0]["tagId"] == predictor.tags[top]["id"]
        raw = requests.post(base + "/image", data=images[0], headers={"Content-Type": "application/octet-stream"})
        assert raw.status_code == 200 and raw.json()["predictions"]
        corrupt = requests.post(base + "/image", data=b"not an image")
        assert corrupt.status_code == 400 and corrupt.json()["code"] == "BadRequestImageFormat"
        huge = requests.post(base + "/image", data=b"\0" * (5 * 1024 * 1024))
        assert huge.status_code in (400, 413) and huge.json()["code"] == "BadRequestImageSizeBytes"
        bad_url = requests.post(base + "/url", json={"url": "file:///etc/passwd"})
        assert bad_url.status_code == 400 and bad_url.json()["code"] == "BadRequestImageUrl"
        _ImageServer.payload = images[1]
        images_server = ThreadingHTTPServer(("127.0.0.1", 0), _ImageServer)
        threading.Thread(target=images_server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{images_server.server_port}/a.jpg"
            by_url = requests.post(base + f"/{project.id}/classify/iterations/Iteration1/url", json={"url": url})
            assert by_url.status_code == 200
            top = next(j for j, t in enumerate(predictor.tags) if t["name"] == by_url.json()["predictions"][0]["tagName"])
            assert expected[1][top] >= expected[1].max() - 1e-3
        finally:
            images_server.shutdown()
    finally:
        server.terminate()
        server.wait(10)


def test_int8_onnx_is_not_offered_and_says_why(trained_round_square):
    """Static int8 ONNX changed the model's top tag (1 of 16, then 6 of 32 benchmark images): withdrawn, with
    Azure's error for a flavour that does not exist and the reason."""
    ws, project, iteration, _ = trained_round_square
    with pytest.raises(CvlabError) as err:
        export_iteration(ws, project.id, iteration.id, "ONNX", "OnnxInt8")
    assert err.value.code == "BadRequestExportValidationFailed" and "TensorFlowLiteInt8" in err.value.message
    assert "top tag" in err.value.message


def test_export_errors_carry_azure_codes(trained_round_square):
    ws, project, iteration, _ = trained_round_square
    cases = [
        (("CoreML", None), "BadRequestNotSupported"),
        (("TensorFlow", "TensorFlowNormal"), "BadRequestNotSupported"),
        (("DockerFile", "Windows"), "BadRequestNotSupported"),
        (("Caffe", None), "BadRequestExportValidationFailed"),
        (("ONNX", "TensorFlowLite"), "BadRequestExportValidationFailed"),
    ]
    for (platform, flavor), code in cases:
        with pytest.raises(CvlabError) as err:
            export_iteration(ws, project.id, iteration.id, platform, flavor)
        assert err.value.code == code, (platform, flavor)
        assert err.value.message
    # non-compact domain
    general = find_domain("General", "Classification")
    other = ws.create_project("Not compact", domain_id=general.id)
    it = ws.create_iteration(other.id, domain_id=general.id)
    ws.update_iteration(other.id, it.id, status="Completed")
    with pytest.raises(CvlabError) as err:
        export_iteration(ws, other.id, it.id, "ONNX")
    assert err.value.code == "BadRequestExportValidationFailed" and "compact" in err.value.message
    # still training, then failed
    compact = ws.create_project("Compact, untrained", domain_id=find_domain("General (compact)", "Classification").id)
    busy = ws.create_iteration(compact.id)
    with pytest.raises(CvlabError) as err:
        export_iteration(ws, compact.id, busy.id, "ONNX")
    assert err.value.code == "BadRequestExportWhileTraining"
    ws.update_iteration(compact.id, busy.id, status="Failed", training_error_details="Cancelled")
    with pytest.raises(CvlabError) as err:
        export_iteration(ws, compact.id, busy.id, "ONNX")
    assert err.value.code == "BadRequestIterationIsNotTrained"
    with pytest.raises(CvlabError) as err:
        export_file(ws, "../../etc/passwd")
    assert err.value.code == "NotFound"


def test_export_already_in_progress(trained_round_square):
    ws, project, iteration, _ = trained_round_square
    ws.create_export(project.id, iteration.id, "TensorFlow", "TensorFlowLiteFloat16")  # a job that is running
    with pytest.raises(CvlabError) as err:
        export_iteration(ws, project.id, iteration.id, "TensorFlow", "TensorFlowLiteFloat16")
    assert err.value.code == "BadRequestExportAlreadyInProgress"


def float_tflite(ws, project, iteration, tmp_path) -> Path:
    """The float TFLite export (built by the test above, or now): the baseline the smaller flavors are held to."""
    return unzip(ws, export_iteration(ws, project.id, iteration.id, "TensorFlow", "TensorFlowLite"),
                 tmp_path / "float") / "model.tflite"


@pytest.mark.parametrize("flavor, max_diff", [
    # fp16 weights, float compute: weights round at 2^-11 relative, so probabilities move by ~1e-3 at most (the
    # reference measured 8.6e-3 on Lite0's 1000 classes; 4e-4 here). 1e-2 still fails a wrong conversion.
    ("TensorFlowLiteFloat16", 1e-2),
    # int8 weights on the convolutions (head stays float): lossy by design (measured 2.2e-2 here with the old
    # standardised head, 5.4e-2 with the L2-normalised few-shot head of issue 19, ~0.2 on Lite0's logits in the
    # reference). 0.1 keeps the answer on these images (checked below) and fails a broken quantisation (~0.5).
    ("TensorFlowLiteInt8", 1e-1),
])
def test_tflite_quantized_flavors_load_and_stay_close_to_float(trained_round_square, tmp_path, flavor, max_diff,
                                                               monkeypatch):
    from ai_edge_litert.interpreter import Interpreter

    ws, project, iteration, images = trained_round_square
    ws.recover_interrupted_exports(running=())  # as at a restart: ends the fake running job of the test above
    baseline = float_tflite(ws, project, iteration, tmp_path)
    conversions = []  # counted, not timed: a machine's speed must not decide the test
    real = convert.to_tflite
    monkeypatch.setattr(convert, "to_tflite", lambda *a, **k: conversions.append(a) or real(*a, **k))
    record = export_iteration(ws, project.id, iteration.id, "TensorFlow", flavor)
    folder = unzip(ws, record, tmp_path / flavor)
    predictor, batch, _ = reference(ws, iteration, images)
    _, meta = check_manifest(folder, "TensorFlow", "model.tflite", [t["name"] for t in predictor.tags])
    assert meta["cvlab.Quantization"] == {"TensorFlowLiteFloat16": "fp16", "TensorFlowLiteInt8": "int8"}[flavor]
    assert (folder / "model.tflite").stat().st_size < 0.7 * baseline.stat().st_size  # fp16 ~1/2, int8 ~1/3
    details = Interpreter(model_path=str(folder / "model.tflite")).get_input_details()[0]
    assert details["dtype"] == np.float32  # float I/O: the same predict code runs every flavor
    want = convert.TFLiteRunner(baseline)(batch)[0]
    got = convert.TFLiteRunner(folder / "model.tflite")(batch)[0]
    diff = float(np.abs(got - want).max())
    print(f"{flavor}: max |p - p_float| = {diff:.2e}")
    assert diff <= max_diff
    assert_same_top_tag(got, want, max_diff)
    assert conversions == [], "a quantised flavor is derived from the cached float conversion, not converted again"


def test_docker_arm_flavor_builds_for_arm_and_serves_the_float_model(trained_round_square, tmp_path):
    from helpers import container_client

    ws, project, iteration, images = trained_round_square
    linux = unzip(ws, export_iteration(ws, project.id, iteration.id, "DockerFile", "Linux"), tmp_path / "linux")
    arm = unzip(ws, export_iteration(ws, project.id, iteration.id, "DockerFile", "ARM"), tmp_path / "arm")
    manifest = json.loads((arm / "app" / "cvexport.manifest").read_text())
    assert manifest["Platform"] == "DockerFile" and manifest["Flavor"] == "ARM"
    dockerfile = (arm / "Dockerfile").read_text()
    assert "FROM --platform=linux/arm64 python:3.11-slim" in dockerfile
    assert dockerfile.replace("--platform=linux/arm64 ", "") == (linux / "Dockerfile").read_text()
    # the same float model: ARM is a build target, not a different network
    assert (arm / "app" / "model.tflite").read_bytes() == (linux / "app" / "model.tflite").read_bytes()
    client = container_client(arm / "app")
    predictor, _, expected = reference(ws, iteration, images)
    for i, data in enumerate(images):
        reply = client.post("/image", data=data, content_type="application/octet-stream")
        assert reply.status_code == 200, reply.get_data(as_text=True)
        by_name = {p["tagName"]: p["probability"] for p in reply.get_json()["predictions"]}
        assert max(abs(by_name[t["name"]] - expected[i][j]) for j, t in enumerate(predictor.tags)) <= 1e-3


def test_cli_export_writes_the_zip(trained_round_square, tmp_path, capsys):
    from cvlab.cli import main

    ws, project, iteration, _ = trained_round_square
    out = tmp_path / "out"
    code = main(["export", "--workspace", str(ws.path), "--project", project.name, "--platform", "ONNX",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr()
    (zip_path,) = out.glob("*.zip")
    assert zip_path.name == f"{project.name}.{iteration.name}.ONNX.zip".replace(" ", "_")
    assert str(zip_path) in capsys.readouterr().out
    with zipfile.ZipFile(zip_path) as zf:
        assert {"model.onnx", "labels.txt", "cvexport.manifest", "metadata_properties.json"} <= set(zf.namelist())
        manifest = json.loads(zf.read("cvexport.manifest"))
    assert manifest["IterationId"] == iteration.id and manifest["Platform"] == "ONNX"


@pytest.mark.parametrize("argv, code, words", [
    (["--project", "Shapes", "--platform", "Caffe"], "BadRequestExportValidationFailed", "Caffe"),
    (["--project", "Shapes", "--platform", "CoreML"], "BadRequestNotSupported", "ONNX"),
    (["--project", "CLI not compact", "--platform", "ONNX"], "BadRequestExportValidationFailed", "compact"),
    (["--project", "No such project", "--platform", "ONNX"], "NotFoundProject", "No such project"),
])
def test_cli_export_bad_input_says_why(trained_round_square, tmp_path, capsys, argv, code, words):
    from cvlab.cli import main

    ws = trained_round_square[0]
    if ws.find_project("CLI not compact") is None:
        general = find_domain("General", "Classification")
        other = ws.create_project("CLI not compact", domain_id=general.id)
        ws.update_iteration(other.id, ws.create_iteration(other.id, domain_id=general.id).id, status="Completed")
    out = tmp_path / "out"
    assert main(["export", "--workspace", str(ws.path), *argv, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error {code}: ") and words in err, err
    assert not list(out.glob("*.zip"))

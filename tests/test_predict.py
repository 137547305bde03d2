"""Predictor: Azure-shaped output, both backends agree, input kinds, per-process cache, clear errors."""
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from cvlab.errors import CvlabError
from cvlab.predict import Predictor
from helpers import scene
from parity import assert_same_probabilities


def test_backends_agree_and_accept_bytes_paths_and_pil(trained_pair, tmp_path):
    ws, _, it = trained_pair
    onnx = Predictor.load(ws, it.id, backend="onnx")
    eager = Predictor.load(ws, it.id, backend="torch")
    assert onnx.backend == "onnx", onnx.backend_note
    assert eager.backend == "torch"
    data = scene("disc", 321)
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    outs = [onnx.predict(data), onnx.predict(path), onnx.predict(str(path)), eager.predict(Image.open(path))]
    for out in outs[1:]:  # compared by tag: two backends may order near-equal probabilities either way
        assert_same_probabilities(out, outs[0], 1e-4)
    assert outs[0][0]["tag_name"] == "disc"


def test_batch_order_and_module_contract(trained_pair):
    ws, _, it = trained_pair
    pred = Predictor.load(ws, it.id)
    images = [scene("stripes", 400), scene("disc", 401), scene("stripes", 402)]
    batch = pred.predict_batch(images)
    assert [b[0]["tag_name"] for b in batch] == ["stripes", "disc", "stripes"]
    single = pred.predict(images[1])
    assert_same_probabilities(single, batch[1], 1e-5)
    x = pred.preprocessing.batch([Image.new("RGB", (50, 30), (10, 200, 30))] * 2)
    assert x.shape == (2, 3, 224, 224)
    with torch.inference_mode():
        p = pred.module(x)
    assert p.shape == (2, 2) and torch.allclose(p.sum(1), torch.ones(2), atol=1e-5)
    assert pred.predict_batch([]) == []


def test_cache_is_per_process_and_thread_safe(trained_pair):
    ws, _, it = trained_pair
    Predictor.clear_cache()
    got = []
    threads = [threading.Thread(target=lambda: got.append(Predictor.load(ws, it.id, backend="torch")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(g is got[0] for g in got)


def test_errors_are_clear(trained_pair):
    ws, p, it = trained_pair
    pending = ws.create_iteration(p.id, name="Not yet", status="Failed")
    with pytest.raises(CvlabError) as e:
        Predictor.load(ws, pending.id)
    assert e.value.code == "BadRequestIterationIsNotTrained"
    with pytest.raises(CvlabError) as e:
        Predictor.load(ws, it.id, backend="tensorrt")
    assert e.value.code == "BadRequest"
    pred = Predictor.load(ws, it.id)
    with pytest.raises(CvlabError) as e:
        pred.predict(b"not an image")
    assert e.value.code == "BadRequestImageFormat"


def test_predictor_cache_forgets_deleted_iterations_and_stays_bounded(tmp_path, monkeypatch):
    """A long-running server must not keep every iteration it ever served in memory."""
    from cvlab import predict

    monkeypatch.setattr(predict, "_cache", {})
    monkeypatch.setenv("CVLAB_PREDICTOR_CACHE", "3")
    folders = []
    for i in range(4):
        folder = tmp_path / f"it{i}"
        folder.mkdir()
        folders.append(str(folder))
        predict._evict(keep_folder=str(folder))
        predict._cache[(str(folder), i, "onnx")] = object()
    assert [k[0] for k in predict._cache] == folders[1:]  # the oldest went when a fourth arrived
    (tmp_path / "it2").rmdir()                               # iteration 2 deleted
    predict._evict(keep_folder=folders[3])                   # iteration 3 reloaded (e.g. retrained weights)
    assert [k[0] for k in predict._cache] == [folders[1]]


def test_onnx_backend_does_not_spin_after_a_run(trained_pair):
    """onnxruntime's pool threads busy-wait after each run by default (~30 ms of CPU per call here), stealing a
    core from whatever runs next: the server's storing and HTTP, or another process."""
    import time

    ws, _, it = trained_pair
    pred = Predictor.load(ws, it.id, backend="onnx")
    assert pred.backend == "onnx", pred.backend_note
    image = scene("disc", 500)
    idle = []
    for _ in range(3):
        pred.predict(image)
        cpu = time.process_time()
        time.sleep(0.2)
        idle.append(time.process_time() - cpu)
    assert min(idle) < 0.01, f"CPU burnt while idle after a run: {[round(s * 1000, 1) for s in idle]} ms"


def test_a_decoded_image_predicts_exactly_as_its_bytes(trained_pair):
    """The service decodes once (cvlab.images.decode_image) and hands the Predictor the pixels."""
    from cvlab.images import decode_image

    ws, _, it = trained_pair
    for backend in ("onnx", "torch"):
        pred = Predictor.load(ws, it.id, backend=backend)
        for data in (scene("disc", 501), scene("stripes", 502)):
            assert pred.predict(decode_image(data)[1]) == pred.predict(data)

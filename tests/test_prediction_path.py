"""The prediction path decodes each image once: same checks, errors, pixels and predictions as inspect + load."""
from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from cvlab import CvlabError, rules
from cvlab.images import decode_image, inspect_image, load_rgb, sha256_bytes, to_rgb
from cvlab.service.wire import dt as _ts
from helpers import make_image_bytes
from helpers import jpeg_with_orientation


def _png_rgba():
    img = Image.new("RGBA", (30, 20), (0, 0, 255, 255))
    img.paste((255, 0, 0, 0), (0, 0, 15, 20))  # left half transparent -> white
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


GOOD = [make_image_bytes(64, 48, seed=1), make_image_bytes(40, 30, seed=2, fmt="PNG"),
        make_image_bytes(40, 30, seed=3, fmt="GIF"), jpeg_with_orientation(60, 40, 6),
        jpeg_with_orientation(50, 30, 3), _png_rgba()]


@pytest.mark.parametrize("data", GOOD)
def test_decode_once_matches_inspect_and_load(data):
    info, img = decode_image(data, "prediction")
    assert info == inspect_image(data, "prediction")
    assert img.mode == "RGB" and img.size == (info.width, info.height)
    assert np.array_equal(np.asarray(img), np.asarray(load_rgb(data)))
    assert decode_image(data, "prediction", digest=False)[0] == dataclasses.replace(info, sha256="")


@pytest.mark.parametrize("data", [b"", b"GIF89a garbage", make_image_bytes(40, 30, fmt="TIFF"),
                                  make_image_bytes(200, 200, seed=2)[:600],  # truncated JPEG
                                  make_image_bytes(520, 20, color=(1, 2, 3), fmt="PNG"),  # aspect ratio
                                  b"\xff\xd8" + bytes(4 * 1024 * 1024 + 1), "not bytes"])
def test_decode_once_refuses_with_the_same_errors(data):
    with pytest.raises(CvlabError) as expected:
        inspect_image(data, "prediction")
    with pytest.raises(CvlabError) as got:
        decode_image(data, "prediction")
    assert (got.value.code, got.value.message) == (expected.value.code, expected.value.message)


def test_to_rgb_never_changes_the_callers_image():
    src = Image.open(io.BytesIO(jpeg_with_orientation(60, 40, 6)))
    src.load()
    out = to_rgb(src)
    assert out is not src and out.size == (40, 60) and src.size == (60, 40)
    upright = Image.new("RGB", (8, 8), (1, 2, 3))
    assert to_rgb(upright) is not upright


def test_predict_and_store_checks_then_decodes_once(trained_colours):
    """Header errors still come before iteration errors; a damaged stream is refused before any quota is
    charged; a good image gives exactly the Predictor's own answer."""
    from cvlab import Workspace
    from cvlab.predict import Predictor
    from cvlab.service.app import create_app
    from cvlab.service.predicting import predict_and_store

    path, info = trained_colours()
    ws = Workspace(path)
    ctx = create_app(ws, training_key="t", prediction_key="p").state.ctx
    it = ws.get_iteration(info["project_id"], info["iteration_id"])
    pid = info["project_id"]
    good = make_image_bytes(64, 64, color=(200, 30, 30))
    used = ws.get_usage("predictions")

    untrained = ws.create_iteration(pid, name="not yet")
    with pytest.raises(CvlabError) as e:
        predict_and_store(ctx, pid, untrained, b"GIF89a garbage", False, None, "Classification")
    assert e.value.code == "BadRequestImageFormat"
    with pytest.raises(CvlabError) as e:
        predict_and_store(ctx, pid, untrained, good, False, None, "Classification")
    assert e.value.code == "BadRequestIterationIsNotTrained"
    with pytest.raises(CvlabError) as e:
        predict_and_store(ctx, pid, it, make_image_bytes(200, 200, seed=2)[:600], False, None, "Classification")
    assert e.value.code == "BadRequestImageFormat"
    assert ws.get_usage("predictions") == used

    answer = predict_and_store(ctx, pid, it, good, True, "app", "Classification")
    direct = Predictor.load(ws, it.id).predict(good)
    assert [(p["tagId"], p["probability"]) for p in answer["predictions"]] == \
        [(p["tag_id"], p["probability"]) for p in direct]
    assert ws.query_predictions(pid) == [] and ctx.stores.queued_predictions() == 1  # written once answered
    ctx.stores.drain()
    assert ws.get_usage("predictions") == used + 1 and ctx.stores.queued_predictions() == 0
    (stored,) = ws.query_predictions(pid)
    assert (stored.id, stored.application, stored.sha256) == (answer["id"], "app", sha256_bytes(good))
    assert _ts(stored.created) == answer["created"]
    ws.close()


def test_a_queued_store_is_written_before_any_training_request(trained_colours, caplog):
    """The prediction route answers before it stores; a training-API request (query_predictions) drains the queue
    first, so it always sees predictions already answered. A store that cannot be written is logged, not raised."""
    from fastapi.testclient import TestClient

    from cvlab import Workspace
    from cvlab.service.app import TRAINING_PREFIX, create_app
    from cvlab.service.predicting import predict_and_store

    path, info = trained_colours()
    ws = Workspace(path)
    app = create_app(ws, training_key="t", prediction_key="p", rate_limits=False)
    ctx, pid = app.state.ctx, info["project_id"]
    it = ws.get_iteration(pid, info["iteration_id"])
    answer = predict_and_store(ctx, pid, it, make_image_bytes(64, 64, color=(30, 40, 200)), True, "cam", None)
    assert ctx.stores.pending() and ws.query_predictions(pid) == []
    ws.add_usage("predictions", rules.limit("predictions_per_month", "F0") - ws.get_usage("predictions") - 1)
    ws.set_tier("F0")  # one prediction left this month, and it is already answered (queued): the next is refused
    with pytest.raises(CvlabError) as e:
        predict_and_store(ctx, pid, it, make_image_bytes(64, 64, color=(30, 40, 200)), False, None, None)
    assert e.value.code == "BadRequestExceededQuota"
    with TestClient(app) as client:
        r = client.post(f"{TRAINING_PREFIX}/projects/{pid}/predictions/query", json={}, headers={"Training-Key": "t"})
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()["results"]] == [answer["id"]] and not ctx.stores.pending()
    assert ws.get_usage("predictions") == rules.limit("predictions_per_month", "F0")

    ctx.stores.put(project_id="00000000-0000-0000-0000-000000000000", iteration_id=it.id, image_bytes=b"x",
                   predictions=[], prediction_id="00000000-0000-0000-0000-000000000001")
    with caplog.at_level("WARNING", logger="cvlab.service"):
        ctx.stores.drain()
    assert "dropped" in caplog.text and not ctx.stores.pending()
    assert len(ws.query_predictions(pid)) == 1
    ws.close()

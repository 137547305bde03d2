"""The course's expensive results are computed once per workspace (issue 18, finding 4: notebook 03's learning
curve was recomputed on every re-run) and recomputed only when asked or when a parameter changes."""
from __future__ import annotations

import json

from cvlab import curriculum as cv


def test_cached_computes_once_per_parameters_and_on_request(ws):
    calls = []

    def compute(value):
        calls.append(value)
        return {"value": value, "calls": len(calls)}

    assert cv.cached("demo", {"n": 1}, lambda: compute(1), ws=ws) == {"value": 1, "calls": 1}
    assert cv.cached("demo", {"n": 1}, lambda: compute(1), ws=ws) == {"value": 1, "calls": 1}   # read back
    assert cv.cached("demo", {"n": 2}, lambda: compute(2), ws=ws)["calls"] == 2                  # new params
    assert cv.cached("demo", {"n": 1}, lambda: compute(1), ws=ws, recompute=True)["calls"] == 3
    assert calls == [1, 2, 1]
    files = sorted((ws.path / "cache" / "course").glob("demo-*.json"))
    assert len(files) == 2 and json.loads(files[0].read_text())["name"] == "demo"
    files[0].write_text("{ damaged")                                   # a damaged file is computed again
    other = 2 if json.loads(files[1].read_text())["params"]["n"] == 1 else 1
    assert cv.cached("demo", {"n": other}, lambda: compute(other), ws=ws)["calls"] == 4


def test_learning_curve_is_cached_and_compares_on_the_same_test_images(ws, monkeypatch):
    monkeypatch.setenv("CVLAB_PROFILE", "fast")
    first = cv.learning_curve(ws=ws, progress=False)
    assert list(first.images_per_tag) == list(cv.profile().curve_sizes)
    assert first.pretrained_f1.between(0, 1).all() and first.scratch_f1.between(0, 1).all()
    again = cv.learning_curve(ws=ws, progress=False)
    assert again.equals(first)                                         # read from the cache, same numbers
    assert len(list((ws.path / "cache" / "course").glob("learning-curve-*.json"))) == 1

"""How the parity tests compare two backends' answers (torch, ONNX, TFLite, the container app, the endpoint): as
sets, never by row order or exact float ties. Two backends may round one ulp apart, so equal scores (or
probabilities a hair apart) can come out in either order, and either of two tied tags can be "the top one"."""
from __future__ import annotations

import numpy as np


def iou(a: dict, b: dict) -> float:
    """IoU of two Azure bounding boxes ``{left, top, width, height}``."""
    w = min(a["left"] + a["width"], b["left"] + b["width"]) - max(a["left"], b["left"])
    h = min(a["top"] + a["height"], b["top"] + b["height"]) - max(a["top"], b["top"])
    inter = max(0.0, w) * max(0.0, h)
    union = a["width"] * a["height"] + b["width"] * b["height"] - inter
    return inter / union if union > 0 else 0.0


def as_predictions(names, boxes, classes, scores) -> list[dict]:
    """Raw detector outputs of one image ([N,4] x1y1x2y2, [N], [N]; padding scores 0) as Prediction API dicts."""
    return [{"tag_name": names[int(c)], "probability": float(s),
             "bounding_box": {"left": float(b[0]), "top": float(b[1]), "width": float(b[2] - b[0]),
                              "height": float(b[3] - b[1])}}
            for b, c, s in zip(np.asarray(boxes), np.asarray(classes), np.asarray(scores)) if s > 0]


def assert_same_detections(want: list[dict], got: list[dict], tolerance: float, *, threshold: float = 0.0,
                           min_iou: float = 0.99) -> int:
    """Every detection scored at least ``threshold`` on either side has a partner on the other: same tag, IoU >=
    ``min_iou`` and a probability within ``tolerance``. Partners are looked for among all detections, so a box right
    at the threshold on one side only is no failure. Returns how many of ``want`` were checked."""
    for ours, theirs in ((want, got), (got, want)):
        for box in (p for p in ours if p["probability"] >= threshold):
            partners = [q for q in theirs if q["tag_name"] == box["tag_name"]
                        and abs(q["probability"] - box["probability"]) <= tolerance]
            best = max((iou(box["bounding_box"], q["bounding_box"]) for q in partners), default=0.0)
            assert best >= min_iou, (f"no partner for {box} (best IoU {best:.4f} among {len(partners)} of the same "
                                     f"tag within {tolerance} in probability)", theirs[:5])
    return sum(p["probability"] >= threshold for p in want)


def assert_same_top_tag(got, want, tolerance: float) -> None:
    """Row-wise top tag of two probability matrices: the same, or a tie within ``tolerance`` on either side."""
    got, want = np.atleast_2d(np.asarray(got, float)), np.atleast_2d(np.asarray(want, float))
    for g, w in zip(got, want):
        assert w[g.argmax()] >= w.max() - tolerance and g[w.argmax()] >= g.max() - tolerance, (g, w)


def probabilities_by_tag(predictions: list[dict], key: str = "tag_id") -> dict:
    """{tag: probability} of a classification answer, so two answers compare whatever their order of equal scores."""
    return {p[key]: p["probability"] for p in predictions}


def assert_same_probabilities(got: list[dict], want: list[dict], tolerance: float, key: str = "tag_id") -> None:
    """Two classification answers: the same tags with probabilities within ``tolerance``, each sorted best first,
    and the same top tag up to a tie within ``tolerance``."""
    g, w = probabilities_by_tag(got, key), probabilities_by_tag(want, key)
    assert set(g) == set(w), (sorted(g), sorted(w))
    assert max(abs(g[t] - w[t]) for t in g) <= tolerance, (g, w)
    for answer in (got, want):
        probs = [p["probability"] for p in answer]
        assert probs == sorted(probs, reverse=True)
    assert w[got[0][key]] >= max(w.values()) - tolerance, (got[0], want[0])

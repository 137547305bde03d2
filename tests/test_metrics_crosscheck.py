"""Randomised cross-checks of cvlab.metrics against scikit-learn and pycocotools (hypothesis).

Tolerances and why:
* P/R/F1 vs sklearn: exact (1e-12); where sklearn hits a zero division we must report Undefined instead.
* Classification AP ("none") vs ``average_precision_score``: exact (1e-12), same step-wise definition and the
  same grouping of tied scores.
* Detection AP "101-point" vs pycocotools at IoU 0.5 and 0.5:0.95: 1e-9 (same matching, same interpolation),
  given distinct scores (COCO orders tied detections by input order, we group ties) and < 100 boxes per image.
* Detection AP "all-point" (our default) vs pycocotools: 0.02, because COCO samples the precision envelope at
  101 recall points; a Riemann sum of a monotone envelope in [0, 1] differs from its area by at most ~1/100
  plus one grid step at the end of the curve.
"""
import contextlib
import io

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.metrics import average_precision_score, precision_recall_fscore_support

from cvlab.metrics import (
    COCO_IOU_THRESHOLDS, DetectionMatcher, Undefined, classification_ap, classification_prf, is_defined,
)

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


def _classification_case(seed, n, t, multiclass):
    rng = np.random.default_rng(seed)
    scores = rng.random((n, t))
    if multiclass:
        scores = scores / scores.sum(axis=1, keepdims=True)
        truth = np.zeros((n, t), bool)
        truth[np.arange(n), rng.integers(0, t, n)] = True
    else:
        truth = rng.random((n, t)) < 0.4
    # Coarse scores make ties, which both implementations must group the same way.
    if seed % 2:
        scores = np.round(scores, 1)
    return truth, scores


def _assert_matches_sklearn(ours, p, r, f):
    if is_defined(ours.precision):
        assert ours.precision == pytest.approx(p, abs=1e-12)
    else:
        assert ours.tp + ours.fp == 0  # sklearn's zero-division case
    if is_defined(ours.recall):
        assert ours.recall == pytest.approx(r, abs=1e-12)
    else:
        assert ours.tp + ours.fn == 0
    if is_defined(ours.f1):
        assert ours.f1 == pytest.approx(f, abs=1e-12)


@SETTINGS
@given(seed=st.integers(0, 10**6), n=st.integers(1, 40), t=st.integers(1, 5),
       threshold=st.floats(0, 1), multiclass=st.booleans())
def test_prf_matches_sklearn(seed, n, t, threshold, multiclass):
    truth, scores = _classification_case(seed, n, t, multiclass)
    ctype = "Multiclass" if multiclass else "Multilabel"
    tags, overall = classification_prf(truth, scores, threshold, ctype)
    if multiclass:  # sklearn on label vectors: the argmax, or -1 ("no tag") below the threshold
        y_true = truth.argmax(axis=1)
        y_pred = np.where(scores.max(axis=1) >= threshold, scores.argmax(axis=1), -1)
        kw = dict(y_true=y_true, y_pred=y_pred, labels=list(range(t)))
    elif t > 1:  # sklearn on indicator matrices
        kw = dict(y_true=truth, y_pred=scores >= threshold)
    else:  # sklearn reads one column as a binary target: score the positive label
        kw = dict(y_true=truth.ravel(), y_pred=scores.ravel() >= threshold, labels=[True])
    p, r, f, _ = precision_recall_fscore_support(**kw, average=None, zero_division=0)
    for j, ours in enumerate(tags):
        _assert_matches_sklearn(ours, p[j], r[j], f[j])
    mp, mr, mf, _ = precision_recall_fscore_support(**kw, average="micro", zero_division=0)
    _assert_matches_sklearn(overall, mp, mr, mf)


@SETTINGS
@given(seed=st.integers(0, 10**6), n=st.integers(1, 40), t=st.integers(1, 4), multiclass=st.booleans())
def test_classification_ap_matches_sklearn(seed, n, t, multiclass):
    truth, scores = _classification_case(seed, n, t, multiclass)
    for j, ap in enumerate(classification_ap(truth, scores)):
        if truth[:, j].any():
            assert ap == pytest.approx(average_precision_score(truth[:, j], scores[:, j]), abs=1e-12)
        else:
            assert isinstance(ap, Undefined)


def _detection_case(seed, n_images, n_tags):
    rng = np.random.default_rng(seed)
    truth, preds = [], []
    for img in range(n_images):
        for _ in range(rng.integers(0, 5)):
            wh = rng.uniform(0.05, 0.4, 2)
            lt = rng.uniform(0, 1 - wh)
            truth.append((img, int(rng.integers(n_tags)), [*lt, *wh]))
        own = [b for b in truth if b[0] == img]
        for _ in range(rng.integers(0, 7)):
            if own and rng.random() < 0.7:  # a noisy copy of a truth box, sometimes with the wrong tag
                _, tag, box = own[rng.integers(len(own))]
                tag = tag if rng.random() < 0.8 else int(rng.integers(n_tags))
                l, t_, w, h = np.array(box) + rng.normal(0, 0.03, 4)
                w, h = np.clip([w, h], 0.01, 1)
                l, t_ = np.clip(l, 0, 1 - w), np.clip(t_, 0, 1 - h)
                box = [l, t_, w, h]
            else:
                wh = rng.uniform(0.05, 0.4, 2)
                tag, box = int(rng.integers(n_tags)), [*rng.uniform(0, 1 - wh), *wh]
            preds.append((img, tag, float(rng.uniform(0.01, 1)), box))
    return truth, preds


def _coco_map(truth, preds, n_images, n_tags):
    """mAP from pycocotools at IoU 0.5 and at 0.5:0.95 (area 'all', maxDets 100); None when undefined."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO()
    gt.dataset = {
        "images": [{"id": i + 1, "width": 1, "height": 1} for i in range(n_images)],
        "categories": [{"id": c + 1, "name": str(c)} for c in range(n_tags)],
        "annotations": [{"id": k + 1, "image_id": img + 1, "category_id": tag + 1, "bbox": list(map(float, box)),
                         "area": float(box[2] * box[3]), "iscrowd": 0} for k, (img, tag, box) in enumerate(truth)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        if not preds:
            return None
        dt = gt.loadRes([{"image_id": img + 1, "category_id": tag + 1, "bbox": list(map(float, box)),
                          "score": s} for img, tag, s, box in preds])
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
    prec = ev.eval["precision"][:, :, :, 0, 2]  # IoU x recall x category, area all, maxDets 100

    def mean(p):
        return float(np.mean(p[p > -1])) if np.any(p > -1) else None

    return mean(prec[:1]), mean(prec)


def _matcher(truth, preds):
    return DetectionMatcher(
        [b[0] for b in truth], [b[1] for b in truth], np.array([b[2] for b in truth]).reshape(-1, 4),
        [p[0] for p in preds], [p[1] for p in preds], [p[2] for p in preds],
        np.array([p[3] for p in preds]).reshape(-1, 4))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10**6), n_images=st.integers(1, 5), n_tags=st.integers(1, 3))
def test_detection_map_matches_pycocotools(seed, n_images, n_tags):
    truth, preds = _detection_case(seed, n_images, n_tags)
    coco = _coco_map(truth, preds, n_images, n_tags)
    m = _matcher(truth, preds)
    ours = {(name, interp): m.mean_average_precision(n_tags, thr, interp)
            for name, thr in (("50", (0.5,)), ("50:95", COCO_IOU_THRESHOLDS))
            for interp in ("101-point", "all-point")}
    if not truth:
        assert all(isinstance(v, Undefined) for v in ours.values())
        return
    if coco is None:  # truths but no predictions at all: every AP is 0
        assert all(v == 0.0 for v in ours.values())
        return
    for i, name in enumerate(("50", "50:95")):
        assert ours[name, "101-point"] == pytest.approx(coco[i], abs=1e-9)
        assert ours[name, "all-point"] == pytest.approx(coco[i], abs=0.02)

"""Evaluation metrics as pure functions on NumPy arrays (no I/O, no workspace).

Every metric is reduced to one representation, the *candidate positives*: each candidate is one thing the model
could claim, with a ``score`` (probability), a ``tag`` (column index) and ``correct`` (would it be a true positive).
At a probability threshold ``t`` the candidates with ``score >= t`` are the model's positives, so for a tag
``TP = correct & kept``, ``FP = ~correct & kept`` and ``FN = n_truth[tag] - TP``. How candidates are made:

* **Multiclass** (Azure's behaviour: https://learn.microsoft.com/azure/ai-services/custom-vision-service/
  getting-started-build-a-classifier#evaluate-the-classifier): one candidate per image, the argmax tag over every
  column (the Negative tag included, because the model can predict it). The image is a positive for that tag if
  its probability >= threshold. A Negative argmax makes no regular positive; an image tagged Negative has no
  regular truth, so any regular positive on it is a false positive. Only regular tags are reported.
* **Multilabel**: one candidate per (image, regular tag); it is a positive if its probability >= threshold.
  Predictions of the Negative tag are not counted as regular positives.
* **Object detection**: one candidate per predicted box. Boxes are matched greedily by descending score, each
  truth box at most once, to the *unmatched* truth box of the same tag and image with the highest IoU, if that
  IoU >= the overlap threshold (COCO's rule; Azure's API default overlap is 0.5). Because the matching is greedy
  by score, raising the probability threshold only truncates the ranked list, so one matching per overlap
  threshold serves every probability threshold.

Definitions:

* Per-tag precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = their harmonic mean (0 when both are 0).
* Overall precision/recall (the numbers at the top of Azure's Performance page) are **micro-averaged** over the
  regular tags: summed TP over summed TP+FP (resp. TP+FN). Each tag therefore weighs by its number of
  predictions (resp. truths), which is how a "weighted by tag" average behaves.
* AP per tag is the area under the precision-recall curve over all candidates (not thresholded), with tied
  scores grouped into one operating point (a threshold cannot split them). Three interpolations are offered:
  ``"none"``: the step-wise sum ``sum (R_k - R_{k-1}) P_k``, identical to
  ``sklearn.metrics.average_precision_score``; used for classification so learners can check it with sklearn.
  ``"all-point"``: the same sum over the precision envelope ``max_{j>=k} P_j`` (PASCAL VOC 2010+); used for
  detection because it is the standard detection AP, never below the step-wise sum and not tied to a grid.
  ``"101-point"``: the mean of the envelope at recall 0, 0.01, ..., 1 (COCO / pycocotools), for cross-checks.
  For classification the AP of a tag ranks that tag's probability on every image (one-vs-rest), also for
  multiclass. A tag with truths but no candidates has AP 0 (it found nothing), as COCO reports.
* mAP = mean AP over the tags that have ground truth; mAP@[.5:.95] = mean of mAP at IoU 0.50, 0.55, ..., 0.95.

Undefined values are never silently 0 or NaN: they are ``Undefined(reason)`` (precision with no predictions at
the threshold, recall or AP of a tag with no ground truth, ...). ``json_number`` turns a value into a JSON-able
float or ``None`` (the wire emits ``null``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from cvlab import rules
from cvlab.errors import CvlabError

NO_TRUTH = "no ground truth for this tag"
NO_PREDICTIONS = "no predictions at or above the threshold"
UNDEFINED_PART = "precision or recall is undefined"
NO_TAGS_WITH_TRUTH = "no tag has ground truth"
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
INTERPOLATIONS = ("none", "all-point", "101-point")


@dataclass(frozen=True)
class Undefined:
    """A metric that has no value, with the reason (e.g. precision when the model predicted nothing)."""

    reason: str

    def __format__(self, spec: str) -> str:
        return "n/a"

    def __str__(self) -> str:
        return "n/a"


Metric = Union[float, Undefined]


def is_defined(value) -> bool:
    return not isinstance(value, Undefined)


def json_number(value) -> float | None:
    """A JSON-able number: a float, or ``None`` for an ``Undefined`` value (the wire format emits ``null``)."""
    return None if isinstance(value, Undefined) else float(value)


def safe_ratio(num: float, den: float, reason: str) -> Metric:
    return Undefined(reason) if den == 0 else float(num) / float(den)


def _bad(message: str) -> CvlabError:
    return CvlabError("BadRequestInvalid", message)


# ----------------------------------------------------------------------------------------------- validation
def check_threshold(value: float, name: str = "threshold") -> float:
    """A threshold must be a number in [0, 1] (Azure's portal slider is 0-100 %)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise _bad(f"{name} must be a number between 0 and 1, got {value!r}.") from None
    if not 0.0 <= v <= 1.0:
        raise _bad(f"{name} must be between 0 and 1 (a fraction, not a percentage), got {v}.")
    return v


def check_probabilities(scores, what: str = "probabilities") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.size and (not np.all(np.isfinite(s)) or s.min() < 0.0 or s.max() > 1.0):
        raise _bad(f"{what} must be finite numbers in [0, 1]; found values outside (min {np.nanmin(s)}, "
                   f"max {np.nanmax(s)}).")
    return s


def check_boxes(boxes, what: str = "boxes") -> np.ndarray:
    """Boxes are (left, top, width, height), normalised, each a region inside the image (``rules.box_problems``)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
    found = rules.box_problems(b)
    if found is not None:
        i, why = found
        raise _bad(f"{what}: box {i} {b[i].tolist()}: {why}. Coordinates are fractions of the image size, "
                   "(left, top, width, height).")
    return b


# --------------------------------------------------------------------------------------- P / R / F1 at threshold
@dataclass(frozen=True)
class PRF:
    """Counts and precision/recall/F1 for one tag (or micro-averaged over tags)."""

    tp: int
    fp: int
    fn: int
    precision: Metric
    recall: Metric
    f1: Metric


def prf_from_counts(tp: int, fp: int, fn: int) -> PRF:
    precision = safe_ratio(tp, tp + fp, NO_PREDICTIONS)
    recall = safe_ratio(tp, tp + fn, NO_TRUTH)
    if not (is_defined(precision) and is_defined(recall)):
        f1: Metric = Undefined(precision.reason if not is_defined(precision) else recall.reason)
    else:
        f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return PRF(int(tp), int(fp), int(fn), precision, recall, f1)


def counts_at_threshold(score, tag, correct, n_truth, threshold: float):
    """Per-tag (tp, fp, fn) integer arrays of the candidates with ``score >= threshold``."""
    n_truth = np.asarray(n_truth, dtype=np.int64)
    kept = np.asarray(score) >= threshold
    tag = np.asarray(tag)
    correct = np.asarray(correct, dtype=bool)
    tp = np.bincount(tag[kept & correct], minlength=len(n_truth))
    fp = np.bincount(tag[kept & ~correct], minlength=len(n_truth))
    return tp, fp, n_truth - tp


def per_tag_prf(tp, fp, fn) -> list[PRF]:
    return [prf_from_counts(a, b, c) for a, b, c in zip(tp, fp, fn)]


def micro_prf(tp, fp, fn) -> PRF:
    """Overall numbers: counts summed over tags (micro average)."""
    return prf_from_counts(int(np.sum(tp)), int(np.sum(fp)), int(np.sum(fn)))


def sweep_counts(score, tag, correct, n_truth, thresholds):
    """(tp, fp, fn) arrays of shape (len(thresholds), n_tags): the counts at every threshold in one pass."""
    score = np.asarray(score, dtype=np.float64)
    tag = np.asarray(tag, dtype=np.int64)
    correct = np.asarray(correct, dtype=bool)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n_truth = np.asarray(n_truth, dtype=np.int64)
    tp = np.zeros((len(thresholds), len(n_truth)), dtype=np.int64)
    fp = np.zeros_like(tp)
    for j in range(len(n_truth)):
        for flag, out in ((True, tp), (False, fp)):
            s = np.sort(score[(tag == j) & (correct == flag)])
            out[:, j] = len(s) - np.searchsorted(s, thresholds, side="left")
    return tp, fp, n_truth[None, :] - tp


# ------------------------------------------------------------------------------------------ classification
def classification_candidates(truth, scores, classification_type: str, regular=None):
    """Candidate positives of a classifier: (row, tag, score, correct) arrays; see the module docstring.

    ``truth`` is a bool (images x tags) matrix, ``scores`` the probabilities, ``regular`` a bool mask of the
    columns that are regular tags (default: all). Returns only candidates on regular tags.
    """
    truth = np.asarray(truth, dtype=bool)
    scores = check_probabilities(scores)
    if truth.shape != scores.shape or truth.ndim != 2:
        raise _bad(f"truth {truth.shape} and scores {scores.shape} must be matrices of the same shape "
                   "(images x tags).")
    n, t = truth.shape
    regular = np.ones(t, dtype=bool) if regular is None else np.asarray(regular, dtype=bool)
    if classification_type == "Multiclass":
        if n and t and np.any(truth.sum(axis=1) > 1):
            row = int(np.flatnonzero(truth.sum(axis=1) > 1)[0])
            raise _bad(f"image {row} has {int(truth[row].sum())} tags, but a multiclass project allows one tag "
                       "per image; remove the extra tags or make the project Multilabel.")
        if t == 0:
            return (np.zeros(0, np.int64),) * 2 + (np.zeros(0), np.zeros(0, bool))
        rows = np.arange(n)
        top = np.argmax(scores, axis=1)
        keep = regular[top]
        rows, top = rows[keep], top[keep]
        return rows, top, scores[rows, top], truth[rows, top]
    if classification_type == "Multilabel":
        rows, cols = np.nonzero(np.broadcast_to(regular[None, :], (n, t)))
        return rows, cols, scores[rows, cols], truth[rows, cols]
    raise _bad(f"classification_type must be 'Multiclass' or 'Multilabel', got {classification_type!r}.")


def classification_prf(truth, scores, threshold: float, classification_type: str, regular=None):
    """Per-tag ``PRF`` list (regular tags, in column order) and the micro-averaged overall ``PRF``."""
    threshold = check_threshold(threshold)
    truth = np.asarray(truth, dtype=bool)
    regular = np.ones(truth.shape[1], dtype=bool) if regular is None else np.asarray(regular, dtype=bool)
    rows, tag, score, correct = classification_candidates(truth, scores, classification_type, regular)
    tp, fp, fn = counts_at_threshold(score, tag, correct, truth.sum(axis=0), threshold)
    idx = np.flatnonzero(regular)
    return per_tag_prf(tp[idx], fp[idx], fn[idx]), micro_prf(tp[idx], fp[idx], fn[idx])


# ----------------------------------------------------------------------------------------------- AP / curves
def pr_curve(score, correct, n_truth: int):
    """Operating points from the highest threshold down: (thresholds, precision, recall) arrays.

    Tied scores form one point. Without truths recall is NaN here (a curve that is not drawn);
    ``average_precision`` reports that case as Undefined.
    """
    score = np.asarray(score, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if score.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    order = np.argsort(-score, kind="mergesort")
    s, c = score[order], correct[order]
    tp = np.cumsum(c)
    fp = np.cumsum(~c)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tp, fp = tp[last], fp[last]
    recall = tp / n_truth if n_truth else np.full(len(last), np.nan)
    return s[last], tp / (tp + fp), recall


def average_precision(score, correct, n_truth: int, interpolation: str = "none") -> Metric:
    """AP of one tag from its ranked candidates; ``n_truth`` counts truths (matched or not)."""
    if interpolation not in INTERPOLATIONS:
        raise _bad(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}.")
    if n_truth <= 0:
        return Undefined(NO_TRUTH)
    _, precision, recall = pr_curve(score, correct, n_truth)
    if precision.size == 0:
        return 0.0
    if interpolation == "none":
        return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    if interpolation == "all-point":
        return float(np.sum(np.diff(np.r_[0.0, recall]) * envelope))
    idx = np.searchsorted(recall, np.linspace(0.0, 1.0, 101), side="left")
    vals = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0)
    return float(np.mean(vals))


def mean_defined(values: Sequence[Metric], reason: str = NO_TAGS_WITH_TRUTH) -> Metric:
    """Mean of the defined values (mAP over tags with ground truth); Undefined when there are none."""
    vals = [float(v) for v in values if is_defined(v)]
    return float(np.mean(vals)) if vals else Undefined(reason)


def std_defined(values: Sequence[Metric], reason: str = "fewer than 2 folds have a value") -> Metric:
    """Population standard deviation (``np.std``, as for ``cross_val_score(...).std()``) of defined values."""
    vals = [float(v) for v in values if is_defined(v)]
    return float(np.std(vals)) if len(vals) >= 2 else Undefined(reason)


def classification_ap(truth, scores, regular=None, interpolation: str = "none") -> list[Metric]:
    """AP per regular tag: the tag's probability ranked over every image (one-vs-rest)."""
    truth = np.asarray(truth, dtype=bool)
    scores = check_probabilities(scores)
    regular = np.ones(truth.shape[1], dtype=bool) if regular is None else np.asarray(regular, dtype=bool)
    return [average_precision(scores[:, j], truth[:, j], int(truth[:, j].sum()), interpolation)
            for j in np.flatnonzero(regular)]


# ------------------------------------------------------------------------------------------------ detection
def ltwh_to_xyxy(boxes) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.c_[b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]]


def box_iou(a, b) -> np.ndarray:
    """IoU matrix of (left, top, width, height) boxes, via ``torchvision.ops.box_iou``; 0 for empty unions."""
    import torch
    from torchvision.ops import box_iou as tv_box_iou

    a, b = ltwh_to_xyxy(a), ltwh_to_xyxy(b)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    iou = tv_box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    return np.nan_to_num(iou, nan=0.0)


class DetectionMatcher:
    """Greedy score-ordered matching of predicted boxes to truth boxes, with IoUs computed once.

    Inputs are flat arrays: truths (image, tag, box) and predictions (image, tag, score, box); ``image`` and
    ``tag`` are integer ids. ``match(iou_threshold)`` returns ``correct`` per prediction (cached per threshold),
    so moving the overlap slider costs one greedy pass and the probability slider costs nothing here.
    """

    def __init__(self, truth_image, truth_tag, truth_boxes, pred_image, pred_tag, pred_score, pred_boxes):
        self.truth_image = np.asarray(truth_image, dtype=np.int64)
        self.truth_tag = np.asarray(truth_tag, dtype=np.int64)
        self.truth_boxes = check_boxes(truth_boxes, "truth regions")
        self.pred_image = np.asarray(pred_image, dtype=np.int64)
        self.pred_tag = np.asarray(pred_tag, dtype=np.int64)
        self.pred_score = check_probabilities(pred_score, "prediction probabilities")
        self.pred_boxes = check_boxes(pred_boxes, "predicted boxes")
        if not (len(self.truth_image) == len(self.truth_tag) == len(self.truth_boxes)):
            raise _bad("truth image, tag and box arrays must have the same length.")
        if not (len(self.pred_image) == len(self.pred_tag) == len(self.pred_score) == len(self.pred_boxes)):
            raise _bad("prediction image, tag, score and box arrays must have the same length.")
        groups: dict[tuple[int, int], tuple[list, list]] = {}
        for i, key in enumerate(zip(self.truth_image.tolist(), self.truth_tag.tolist())):
            groups.setdefault(key, ([], []))[0].append(i)
        for i, key in enumerate(zip(self.pred_image.tolist(), self.pred_tag.tolist())):
            groups.setdefault(key, ([], []))[1].append(i)
        self._groups = []  # (pred indices by descending score, truth indices, IoU matrix preds x truths)
        for t_idx, p_idx in groups.values():
            if not p_idx or not t_idx:
                continue
            p = np.asarray(p_idx)
            p = p[np.argsort(-self.pred_score[p], kind="mergesort")]
            t = np.asarray(t_idx)
            self._groups.append((p, t, box_iou(self.pred_boxes[p], self.truth_boxes[t])))
        self._cache: dict[float, np.ndarray] = {}  # overlap threshold -> matched truth index

    def match(self, iou_threshold: float = 0.5) -> np.ndarray:
        """``correct`` per prediction: it was matched to a truth box at this IoU threshold."""
        return self.matched_truth(iou_threshold) >= 0

    def matched_truth(self, iou_threshold: float = 0.5) -> np.ndarray:
        """Index of the truth box each prediction matched, or -1 (cached per threshold)."""
        thr = check_threshold(iou_threshold, "overlap threshold")
        key = round(thr, 9)
        if key not in self._cache:
            matched = np.full(len(self.pred_score), -1, dtype=np.int64)
            for preds, truths, iou in self._groups:
                free = np.ones(iou.shape[1], dtype=bool)
                for row, p in enumerate(preds):
                    cand = np.where(free & (iou[row] >= thr), iou[row], -1.0)
                    best = int(np.argmax(cand))
                    if cand[best] >= 0:
                        free[best] = False
                        matched[p] = truths[best]
            self._cache[key] = matched
        return self._cache[key]

    def n_truth(self, n_tags: int, truth_mask=None) -> np.ndarray:
        tags = self.truth_tag if truth_mask is None else self.truth_tag[truth_mask]
        return np.bincount(tags, minlength=n_tags)

    def average_precisions(self, n_tags: int, iou_threshold: float = 0.5,
                           interpolation: str = "all-point") -> list[Metric]:
        """AP per tag index at one IoU threshold."""
        correct = self.match(iou_threshold)
        n_truth = self.n_truth(n_tags)
        return [average_precision(self.pred_score[self.pred_tag == j], correct[self.pred_tag == j],
                                  int(n_truth[j]), interpolation) for j in range(n_tags)]

    def mean_average_precision(self, n_tags: int, iou_thresholds=(0.5,),
                               interpolation: str = "all-point") -> Metric:
        """mAP averaged over the given IoU thresholds (``COCO_IOU_THRESHOLDS`` for mAP@[.5:.95])."""
        maps = [mean_defined(self.average_precisions(n_tags, t, interpolation)) for t in iou_thresholds]
        return mean_defined(maps)


def detection_prf(matcher: DetectionMatcher, n_tags: int, threshold: float, overlap_threshold: float = 0.5):
    """Per-tag ``PRF`` list and micro-averaged overall ``PRF`` of a detector at the two thresholds."""
    threshold = check_threshold(threshold)
    correct = matcher.match(overlap_threshold)
    tp, fp, fn = counts_at_threshold(matcher.pred_score, matcher.pred_tag, correct, matcher.n_truth(n_tags),
                                     threshold)
    return per_tag_prf(tp, fp, fn), micro_prf(tp, fp, fn)

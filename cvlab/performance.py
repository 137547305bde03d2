"""Azure's Performance page: IterationPerformance / TagPerformance / ImagePerformance from evaluation records.

Input is ``evaluation.json`` (ARCHITECTURE.md), written by training into ``ws.iteration_dir(iteration_id)``.
``Evaluation`` parses one split of it once into arrays (see ``cvlab.metrics`` for every definition), after which
any ``threshold`` / ``overlap_threshold`` is cheap: the service, the views and the threshold explorer share it.

Choices, stated once:
* Only regular tags are reported; the Negative tag takes part in the multiclass argmax but has no row.
* precision / recall are pooled over all out-of-fold predictions (``split="cv"``, as Azure measures on the
  training images); ``*_std_deviation`` is the population std over the k folds (``fold`` field). With a single
  validation fold (Advanced training, detection) or on held-out images there is no spread: Undefined.
* ``average_precision``: classification uses the step-wise AP (= sklearn); detection the all-point interpolated
  AP at ``overlap_threshold``, with mAP@[.5:.95] as the extra ``map_50_95``.
* A classification prediction missing from a record counts as probability 0 (training writes every tag).
* Extras beyond Azure's fields (f1, counts, split, ...) come after them; ``to_dict()`` gives JSON-able snake_case
  with ``None`` for undefined values (the service maps the Azure fields to camelCase).
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from cvlab import metrics as M
from cvlab.errors import CvlabError
from cvlab.metrics import Metric, Undefined, json_number

SPLITS = ("cv", "holdout")
ONE_FOLD = "a single validation split has no fold-to-fold spread"
NO_FOLDS = "held-out images are not split into folds"


def _bad(message: str) -> CvlabError:
    return CvlabError("BadRequestInvalid", message)


def _jsonable(obj) -> dict:
    out = {}
    for k, v in obj.__dict__.items():
        if isinstance(v, Undefined):
            out[k] = None
            out.setdefault("undefined_reasons", {})[k] = v.reason
        elif isinstance(v, list):
            out[k] = [x.to_dict() if hasattr(x, "to_dict") else x for x in v]
        elif isinstance(v, (np.floating, np.integer)):
            out[k] = v.item()
        elif isinstance(v, datetime):
            out[k] = v.isoformat()
        else:
            out[k] = v
    if "undefined_reasons" in out:  # keep it last, after the fields it explains
        out["undefined_reasons"] = out.pop("undefined_reasons")
    return out


@dataclass
class TagPerformance:
    """Azure's TagPerformance (fields first), plus F1 and the counts at the threshold."""

    id: str
    name: str
    precision: Metric
    precision_std_deviation: Metric
    recall: Metric
    recall_std_deviation: Metric
    average_precision: Metric
    f1: Metric = field(default_factory=lambda: Undefined("not computed"))
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    def to_dict(self) -> dict:
        return _jsonable(self)


@dataclass
class IterationPerformance:
    """Azure's IterationPerformance (fields first), plus the settings and extras it was computed with."""

    per_tag_performance: list[TagPerformance]
    precision: Metric
    precision_std_deviation: Metric
    recall: Metric
    recall_std_deviation: Metric
    average_precision: Metric
    f1: Metric = field(default_factory=lambda: Undefined("not computed"))
    map_50_95: Metric | None = None  # detection only: mAP averaged over IoU 0.50:0.95
    threshold: float = 0.5
    overlap_threshold: float | None = None
    split: str = "cv"
    image_count: int = 0
    project_type: str = "Classification"
    classification_type: str | None = None

    def to_dict(self) -> dict:
        return _jsonable(self)

    def to_frame(self):
        """A pandas table: one row per tag and an "(overall)" row; percentages as learners read them."""
        import pandas as pd

        rows = [{"tag": t.name, "precision": json_number(t.precision), "recall": json_number(t.recall),
                 "f1": json_number(t.f1), "AP": json_number(t.average_precision), "TP": t.true_positives,
                 "FP": t.false_positives, "FN": t.false_negatives} for t in self.per_tag_performance]
        rows.append({"tag": "(overall)", "precision": json_number(self.precision),
                     "recall": json_number(self.recall), "f1": json_number(self.f1),
                     "AP": json_number(self.average_precision),
                     "TP": sum(t.true_positives for t in self.per_tag_performance),
                     "FP": sum(t.false_positives for t in self.per_tag_performance),
                     "FN": sum(t.false_negatives for t in self.per_tag_performance)})
        frame = pd.DataFrame(rows).set_index("tag")
        cols = ["precision", "recall", "f1", "AP"]
        frame[cols] = frame[cols].astype(float)  # undefined -> NaN in the table (shown as n/a)
        return frame

    def _repr_html_(self) -> str:
        head = (f"<b>{self.split}</b> &middot; threshold {self.threshold:.0%}"
                + (f" &middot; overlap {self.overlap_threshold:.0%}" if self.overlap_threshold is not None else "")
                + f" &middot; {self.image_count} images")
        return head + self.to_frame().to_html(float_format=lambda v: f"{v:.1%}", na_rep="n/a")


@dataclass
class ImagePerformance:
    """One evaluated image: its truth (tags, regions) next to the model's predictions, highest first."""

    id: str
    tags: list[dict]
    regions: list[dict]
    predictions: list[dict]
    split: str = "cv"
    fold: int | None = None
    created: datetime | None = None
    width: int | None = None
    height: int | None = None

    def to_dict(self) -> dict:
        return _jsonable(self)


# ------------------------------------------------------------------------------------------------ the model
class Evaluation:
    """One split of an evaluation, parsed into arrays once; every threshold is computed from them."""

    def __init__(self, records: list[dict], tags: list[dict], project_type: str,
                 classification_type: str | None = None, split: str = "cv"):
        if project_type not in ("Classification", "ObjectDetection"):
            raise _bad(f"project_type must be 'Classification' or 'ObjectDetection', got {project_type!r}.")
        if project_type == "Classification" and classification_type not in ("Multiclass", "Multilabel"):
            raise _bad("classification_type must be 'Multiclass' or 'Multilabel' for a classification project, "
                       f"got {classification_type!r}.")
        if not tags:
            raise _bad("the evaluation has no tags: train with at least one tag.")
        if not records:
            raise _bad(f"no evaluated images in split {split!r}: there is nothing to measure"
                       + (" (set some images aside as holdout before training)." if split == "holdout" else "."))
        self.records = records
        self.tags = [dict(t) for t in tags]
        self.project_type = project_type
        self.classification_type = classification_type if project_type == "Classification" else None
        self.split = split
        self.is_detection = project_type == "ObjectDetection"
        self.tag_index = {t["id"]: j for j, t in enumerate(self.tags)}
        if len(self.tag_index) != len(self.tags):
            raise _bad("tag ids in the evaluation are not unique.")
        self.regular = np.array([t.get("type", "Regular") != "Negative" for t in self.tags])
        self.regular_idx = np.flatnonzero(self.regular)
        self.image_ids = [r.get("image_id") for r in records]
        try:
            self.fold = np.array([-1 if r.get("fold") is None else int(r["fold"]) for r in records], np.int64)
        except (TypeError, ValueError, AttributeError):
            raise _bad("every record needs a dict with an integer 'fold' (or null for held-out images).") from None
        self.folds = sorted(set(self.fold.tolist()) - {-1})
        self._ap_cache: dict = {}
        (self._parse_detection if self.is_detection else self._parse_classification)()

    # -- parsing
    def _tag(self, tag_id, where: str) -> int:
        try:
            return self.tag_index[tag_id]
        except KeyError:
            raise CvlabError("BadRequestInvalidIds", f"{where}: unknown tag id {tag_id!r}; it is not one of the "
                                                     "iteration's tags (was it deleted or added after training?)"
                             ) from None

    def _parse_classification(self) -> None:
        n, t = len(self.records), len(self.tags)
        self.truth = np.zeros((n, t), dtype=bool)
        self.scores = np.zeros((n, t), dtype=np.float64)
        seen = np.zeros((n, t), dtype=bool)
        for i, rec in enumerate(self.records):
            where = f"image {rec.get('image_id')}"
            for tid in (rec.get("truth") or {}).get("tag_ids") or []:
                self.truth[i, self._tag(tid, where)] = True
            for p in rec.get("predictions") or []:
                j = self._tag(p.get("tag_id"), where)
                if seen[i, j]:
                    raise _bad(f"{where}: tag {self.tags[j]['name']!r} is predicted twice.")
                seen[i, j] = True
                self.scores[i, j] = p.get("probability", 0.0)
        M.check_probabilities(self.scores, "prediction probabilities")
        rows, tag, score, correct = M.classification_candidates(self.truth, self.scores, self.classification_type,
                                                                self.regular)
        self._cls_candidates = (score, tag, correct, self.fold[rows], rows)

    def _parse_detection(self) -> None:
        ti, tt, tb, pi, pt, ps, pb = [], [], [], [], [], [], []
        for i, rec in enumerate(self.records):
            where = f"image {rec.get('image_id')}"
            for r in (rec.get("truth") or {}).get("regions") or []:
                ti.append(i)
                tt.append(self._tag(r.get("tag_id"), where))
                tb.append([r.get(k) for k in ("left", "top", "width", "height")])
            for p in rec.get("predictions") or []:
                box = p.get("bounding_box")
                if not box:
                    raise _bad(f"{where}: a detection prediction has no bounding_box.")
                pi.append(i)
                pt.append(self._tag(p.get("tag_id"), where))
                ps.append(p.get("probability"))
                pb.append([box.get(k) for k in ("left", "top", "width", "height")])
        try:
            self.matcher = M.DetectionMatcher(ti, tt, np.array(tb, dtype=float).reshape(-1, 4), pi, pt,
                                              np.array(ps, dtype=float), np.array(pb, dtype=float).reshape(-1, 4))
        except (TypeError, ValueError):
            raise _bad("a region or prediction has a missing or non-numeric coordinate or probability.") from None

    # -- candidates and counts
    def candidates(self, overlap_threshold: float = 0.5):
        """(score, tag, correct, fold, image row) per candidate positive (see cvlab.metrics)."""
        if not self.is_detection:
            return self._cls_candidates
        m = self.matcher
        return m.pred_score, m.pred_tag, m.match(overlap_threshold), self.fold[m.pred_image], m.pred_image

    def n_truth(self, fold: int | None = None) -> np.ndarray:
        if self.is_detection:
            mask = None if fold is None else self.fold[self.matcher.truth_image] == fold
            return self.matcher.n_truth(len(self.tags), mask)
        truth = self.truth if fold is None else self.truth[self.fold == fold]
        return truth.sum(axis=0)

    def counts(self, threshold: float = 0.5, overlap_threshold: float = 0.5, fold: int | None = None):
        """Per-tag (tp, fp, fn) over all tags (index = tag order) at the thresholds, optionally in one fold."""
        score, tag, correct, cfold, _ = self.candidates(overlap_threshold)
        if fold is not None:
            keep = cfold == fold
            score, tag, correct = score[keep], tag[keep], correct[keep]
        return M.counts_at_threshold(score, tag, correct, self.n_truth(fold), threshold)

    def sweep(self, thresholds, overlap_threshold: float = 0.5):
        """(tp, fp, fn) arrays of shape (thresholds, tags) for threshold curves."""
        score, tag, correct, _, _ = self.candidates(overlap_threshold)
        return M.sweep_counts(score, tag, correct, self.n_truth(), thresholds)

    def average_precisions(self, overlap_threshold: float = 0.5) -> list[Metric]:
        """AP per regular tag (cached: it does not depend on the probability threshold)."""
        key = round(overlap_threshold, 9) if self.is_detection else None
        if key not in self._ap_cache:
            if self.is_detection:
                aps = self.matcher.average_precisions(len(self.tags), overlap_threshold, "all-point")
                self._ap_cache[key] = [aps[j] for j in self.regular_idx]
            else:
                self._ap_cache[key] = M.classification_ap(self.truth, self.scores, self.regular, "none")
        return self._ap_cache[key]

    def map_50_95(self) -> Metric:
        """Detection mAP averaged over IoU 0.50:0.95 (COCO's headline number), cached."""
        if "50:95" not in self._ap_cache:
            per_iou = [M.mean_defined([self.matcher.average_precisions(len(self.tags), u)[j]
                                       for j in self.regular_idx]) for u in M.COCO_IOU_THRESHOLDS]
            self._ap_cache["50:95"] = M.mean_defined(per_iou)
        return self._ap_cache["50:95"]

    def pr_curves(self, overlap_threshold: float = 0.5) -> dict[str, tuple]:
        """Per regular tag id: (thresholds, precision, recall) operating points, high threshold first."""
        out = {}
        for j in self.regular_idx:
            if self.is_detection:
                m = self.matcher
                sel = m.pred_tag == j
                score, correct = m.pred_score[sel], m.match(overlap_threshold)[sel]
            else:
                score, correct = self.scores[:, j], self.truth[:, j]
            out[self.tags[j]["id"]] = M.pr_curve(score, correct, int(self.n_truth()[j]))
        return out

    # -- Azure's objects
    def performance(self, threshold: float = 0.5, overlap_threshold: float = 0.5) -> IterationPerformance:
        threshold = M.check_threshold(threshold)
        overlap_threshold = M.check_threshold(overlap_threshold, "overlap threshold")
        r = self.regular_idx
        tp, fp, fn = (a[r] for a in self.counts(threshold, overlap_threshold))
        tags = M.per_tag_prf(tp, fp, fn)
        overall = M.micro_prf(tp, fp, fn)
        per_fold = [[a[r] for a in self.counts(threshold, overlap_threshold, f)] for f in self.folds]
        fold_tags = [M.per_tag_prf(*c) for c in per_fold]
        fold_all = [M.micro_prf(*c) for c in per_fold]

        def std(values):
            if self.split == "holdout" or not self.folds:
                return Undefined(NO_FOLDS)
            return Undefined(ONE_FOLD) if len(self.folds) < 2 else M.std_defined(values)

        aps = self.average_precisions(overlap_threshold)
        per_tag = [TagPerformance(
            id=self.tags[j]["id"], name=self.tags[j]["name"],
            precision=t.precision, precision_std_deviation=std([ft[k].precision for ft in fold_tags]),
            recall=t.recall, recall_std_deviation=std([ft[k].recall for ft in fold_tags]),
            average_precision=aps[k], f1=t.f1, true_positives=t.tp, false_positives=t.fp, false_negatives=t.fn)
            for k, (j, t) in enumerate(zip(r, tags))]
        map_50_95 = self.map_50_95() if self.is_detection else None
        return IterationPerformance(
            per_tag_performance=per_tag,
            precision=overall.precision, precision_std_deviation=std([f.precision for f in fold_all]),
            recall=overall.recall, recall_std_deviation=std([f.recall for f in fold_all]),
            average_precision=M.mean_defined(aps), f1=overall.f1, map_50_95=map_50_95, threshold=threshold,
            overlap_threshold=overlap_threshold if self.is_detection else None, split=self.split,
            image_count=len(self.records), project_type=self.project_type,
            classification_type=self.classification_type)

    def image_performances(self, tag_ids=None, take: int = 50, skip: int = 0) -> list[ImagePerformance]:
        """Per image truth vs predictions, in record order; ``tag_ids`` keeps images whose truth has any of them."""
        rows = self.image_rows(tag_ids)
        if take < 0 or skip < 0:
            raise _bad("take and skip must be >= 0.")
        return [self.image_performance(i) for i in rows[skip:skip + take]]

    def image_rows(self, tag_ids=None) -> list[int]:
        if not tag_ids:
            return list(range(len(self.records)))
        wanted = {self._tag(t, "tag_ids filter") for t in tag_ids}
        return [i for i in range(len(self.records)) if wanted & set(self._truth_tags(i))]

    def _truth_tags(self, i: int) -> list[int]:
        if self.is_detection:
            return sorted(set(self.matcher.truth_tag[self.matcher.truth_image == i].tolist()))
        return np.flatnonzero(self.truth[i]).tolist()

    def image_performance(self, i: int) -> ImagePerformance:
        rec = self.records[i]
        name = {t["id"]: t for t in self.tags}
        tags = [{"tag_id": self.tags[j]["id"], "tag_name": self.tags[j]["name"]} for j in self._truth_tags(i)]
        regions = [{"tag_id": r["tag_id"], "tag_name": name[r["tag_id"]]["name"],
                    **{k: float(r[k]) for k in ("left", "top", "width", "height")}}
                   for r in (rec.get("truth") or {}).get("regions") or []]
        preds = sorted(({"tag_id": p["tag_id"], "tag_name": name[p["tag_id"]]["name"],
                         "tag_type": name[p["tag_id"]].get("type", "Regular"),
                         "probability": float(p.get("probability", 0.0)),
                         "bounding_box": p.get("bounding_box")} for p in rec.get("predictions") or []),
                       key=lambda p: -p["probability"])
        return ImagePerformance(id=rec.get("image_id"), tags=tags, regions=regions, predictions=preds,
                                split=rec.get("split", self.split), fold=rec.get("fold"))

    # -- mistakes and confusion
    def mistakes(self, threshold: float = 0.5, overlap_threshold: float = 0.5) -> list[dict]:
        """Images with at least one error: ``false_positives`` (predictions) and ``false_negatives`` (truths).

        Classification items are ``{tag_id, tag_name, probability}``; detection items add ``box`` (l, t, w, h).
        Sorted with the most errors first, then by record order.
        """
        threshold = M.check_threshold(threshold)
        out: dict[int, dict] = {}

        def item(i):
            return out.setdefault(i, {"image_id": self.image_ids[i], "row": i, "false_positives": [],
                                      "false_negatives": [], "true_positives": []})

        if self.is_detection:
            m = self.matcher
            matched = m.matched_truth(overlap_threshold)
            kept = m.pred_score >= threshold
            found = set(matched[kept & (matched >= 0)].tolist())
            for p in np.flatnonzero(kept):
                kind = "true_positives" if matched[p] >= 0 else "false_positives"
                item(int(m.pred_image[p]))[kind].append(self._box_item(m.pred_tag[p], m.pred_boxes[p],
                                                                       m.pred_score[p]))
            for t in range(len(m.truth_tag)):
                if t not in found and self.regular[m.truth_tag[t]]:
                    item(int(m.truth_image[t]))["false_negatives"].append(
                        self._box_item(m.truth_tag[t], m.truth_boxes[t], None))
        else:
            score, tag, correct, _, rows = self._cls_candidates
            kept = score >= threshold
            positive = np.zeros_like(self.truth)
            positive[rows[kept], tag[kept]] = True
            for i, j in zip(*np.nonzero(positive)):
                kind = "true_positives" if self.truth[i, j] else "false_positives"
                item(int(i))[kind].append(self._tag_item(j, self.scores[i, j]))
            for i, j in zip(*np.nonzero(self.truth & ~positive & self.regular[None, :])):
                item(int(i))["false_negatives"].append(self._tag_item(j, self.scores[i, j]))
        bad = [v for v in out.values() if v["false_positives"] or v["false_negatives"]]
        return sorted(bad, key=lambda v: (-(len(v["false_positives"]) + len(v["false_negatives"])), v["row"]))

    def _tag_item(self, j, probability) -> dict:
        return {"tag_id": self.tags[j]["id"], "tag_name": self.tags[j]["name"], "probability": float(probability)}

    def _box_item(self, j, box, probability) -> dict:
        return {"tag_id": self.tags[j]["id"], "tag_name": self.tags[j]["name"],
                "probability": None if probability is None else float(probability),
                "box": [float(v) for v in box]}

    def confusion(self, threshold: float = 0.5):
        """Multiclass confusion matrix at the threshold: (labels, matrix) with rows = truth, columns = predicted.

        Labels are the tag names plus "(none)": images with no tag (Negative-tagged) as truth, and predictions
        below the threshold or of the Negative tag as the predicted column. Computed by sklearn.
        """
        from sklearn.metrics import confusion_matrix

        if self.is_detection or self.classification_type != "Multiclass":
            raise CvlabError("BadRequestNotSupported", "a confusion matrix needs a multiclass classification "
                                                       "project; use mistakes() for multilabel or detection.")
        threshold = M.check_threshold(threshold)
        none = len(self.tags)
        reg = self.truth & self.regular[None, :]
        y_true = np.where(reg.any(axis=1), reg.argmax(axis=1), none)
        score, tag, _, _, rows = self._cls_candidates
        y_pred = np.full(len(self.records), none)
        kept = score >= threshold
        y_pred[rows[kept]] = tag[kept]
        labels = [*self.regular_idx.tolist(), none]
        names = [self.tags[j]["name"] for j in self.regular_idx] + ["(none)"]
        return names, confusion_matrix(y_true, y_pred, labels=labels)

    # -- constructors
    @classmethod
    def from_dict(cls, evaluation: dict, split: str = "cv") -> "Evaluation":
        """Parse one split of an ``evaluation.json`` document."""
        if split not in SPLITS:
            raise _bad(f"split must be one of {SPLITS}, got {split!r}.")
        try:
            records = [r for r in evaluation["records"] if r.get("split", "cv") == split]
            return cls(records, evaluation["tags"], evaluation["project_type"],
                       evaluation.get("classification_type"), split)
        except (KeyError, TypeError, AttributeError) as e:
            raise _bad(f"the evaluation document is malformed (missing {e}); see evaluation.json in "
                       "ARCHITECTURE.md.") from None


def performance_from_records(records: list[dict], tags: list[dict], project_type: str,
                             classification_type: str | None = None, threshold: float = 0.5,
                             overlap_threshold: float = 0.5) -> IterationPerformance:
    """IterationPerformance of evaluation records (one split), pure: no workspace needed."""
    split = records[0].get("split", "cv") if records else "cv"
    return Evaluation(records, tags, project_type, classification_type, split).performance(threshold,
                                                                                            overlap_threshold)


# ------------------------------------------------------------------------------------------ self-test vs held-out
@dataclass
class SplitComparison:
    """Self-test (Azure's number: out-of-fold on training images) next to held-out images, when there are any."""

    self_test: IterationPerformance
    holdout: IterationPerformance | None
    holdout_reason: str | None = None

    def to_frame(self):
        import pandas as pd

        parts = {"self-test (cv)": self.self_test.to_frame()}
        if self.holdout is not None:
            parts["held-out"] = self.holdout.to_frame()
        frame = pd.concat(parts, axis=1).swaplevel(axis=1)
        metrics = list(self.self_test.to_frame().columns)  # precision, recall, f1, AP, counts: in that order
        return frame[[(m, split) for m in metrics for split in parts]]

    def to_dict(self) -> dict:
        return {"self_test": self.self_test.to_dict(),
                "holdout": None if self.holdout is None else self.holdout.to_dict(),
                "holdout_reason": self.holdout_reason}

    def _repr_html_(self) -> str:
        note = f"<p><i>{self.holdout_reason}</i></p>" if self.holdout is None else ""
        return note + self.to_frame().to_html(float_format=lambda v: f"{v:.1%}", na_rep="n/a")


NO_HOLDOUT = ("no held-out images: mark some images as holdout before training to see how the model does on "
              "images it never saw")


def compare_evaluation_splits(evaluation: dict, threshold: float = 0.5,
                              overlap_threshold: float = 0.5) -> SplitComparison:
    cv = Evaluation.from_dict(evaluation, "cv").performance(threshold, overlap_threshold)
    if not any(r.get("split") == "holdout" for r in evaluation.get("records", [])):
        return SplitComparison(cv, None, NO_HOLDOUT)
    return SplitComparison(cv, Evaluation.from_dict(evaluation, "holdout").performance(threshold,
                                                                                       overlap_threshold))


# ------------------------------------------------------------------------------------------ workspace loaders
_CACHE: "OrderedDict[tuple, Evaluation]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 16


def _evaluation_path(ws, project_id: str, iteration_id: str) -> Path:
    """evaluation.json of a Completed iteration; Azure's errors when it is missing, not trained or has none.

    The iteration is looked up first, so a wrong id never creates an iteration folder."""
    iteration = ws.get_iteration(project_id, iteration_id)
    if iteration.status != "Completed":
        raise CvlabError("BadRequestIterationIsNotTrained",
                         f"{iteration.name} is {iteration.status}: its performance exists once training has "
                         "completed (wait for status Completed, or retrain if it failed).")
    path = Path(ws.iteration_dir(iteration.id)) / "evaluation.json"
    if not path.exists():
        raise CvlabError("NotFoundIterationPerformance",
                         f"{iteration.name} has no evaluation records (evaluation.json): retrain the project.")
    return path


def load_evaluation_dict(ws, project_id: str, iteration_id: str) -> dict:
    """The iteration's ``evaluation.json`` document."""
    return json.loads(_evaluation_path(ws, project_id, iteration_id).read_text())


def load_evaluation(ws, project_id: str, iteration_id: str, split: str = "cv") -> Evaluation:
    """Parsed ``Evaluation`` of one split, cached by file and modification time (the service calls it often)."""
    path = _evaluation_path(ws, project_id, iteration_id)
    key = (str(path), path.stat().st_mtime_ns, split)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    ev = Evaluation.from_dict(json.loads(path.read_text()), split)
    with _CACHE_LOCK:
        _CACHE[key] = ev
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return ev


def get_iteration_performance(ws, project_id: str, iteration_id: str, threshold: float = 0.5,
                              overlap_threshold: float = 0.5, split: str = "cv") -> IterationPerformance:
    """Azure's ``get_iteration_performance``: a thin loader over ``Evaluation.performance``."""
    return load_evaluation(ws, project_id, iteration_id, split).performance(threshold, overlap_threshold)


def get_image_performances(ws, project_id: str, iteration_id: str, tag_ids=None, order_by: str | None = None,
                           take: int = 50, skip: int = 0, split: str = "cv") -> list[ImagePerformance]:
    """Azure's ``get_image_performances``, filled with each image's created time and size from the workspace.

    ``order_by`` "Newest"/"Oldest" sorts by the image's creation time (None keeps the evaluation order).
    """
    ev = load_evaluation(ws, project_id, iteration_id, split)
    if order_by not in (None, "Newest", "Oldest"):
        raise _bad(f"order_by must be 'Newest' or 'Oldest', got {order_by!r}.")
    if take < 0 or skip < 0:
        raise _bad("take and skip must be >= 0.")
    rows = ev.image_rows(tag_ids)
    images = {}
    if order_by is not None or rows:
        wanted = [ev.image_ids[i] for i in rows] if order_by is not None else \
            [ev.image_ids[i] for i in rows[skip:skip + take]]
        images = _images_by_id(ws, project_id, wanted)
    if order_by is not None:
        rows = sorted(rows, key=lambda i: (_created(images.get(ev.image_ids[i])), i), reverse=order_by == "Newest")
    out = []
    for i in rows[skip:skip + take]:
        perf = ev.image_performance(i)
        im = images.get(perf.id)
        if im is not None:
            perf.created, perf.width, perf.height = im.created, im.width, im.height
        out.append(perf)
    return out


def get_image_performance_count(ws, project_id: str, iteration_id: str, tag_ids=None, split: str = "cv") -> int:
    return len(load_evaluation(ws, project_id, iteration_id, split).image_rows(tag_ids))


def compare_splits(ws, project_id: str, iteration_id: str, threshold: float = 0.5,
                   overlap_threshold: float = 0.5) -> SplitComparison:
    """Self-test vs held-out of a trained iteration, side by side."""
    return compare_evaluation_splits(load_evaluation_dict(ws, project_id, iteration_id), threshold,
                                     overlap_threshold)


def _created(image):
    return image.created.timestamp() if image is not None and image.created else 0.0


def _images_by_id(ws, project_id: str, image_ids: list[str]) -> dict:
    """Image records by id (images deleted since training are simply absent)."""
    out = {}
    for start in range(0, len(image_ids), 256):
        chunk = image_ids[start:start + 256]
        for im in ws.get_images(project_id, image_ids=chunk, take=len(chunk)):
            out[im.id] = im
    return out

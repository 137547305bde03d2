"""Object detection training through ``cvlab.nets.detector``, evaluated on a seeded validation split."""
from __future__ import annotations

import time

from .outputs import jsonable, save
from .plan import Plan, validation_split
from .progress import Progress

DETECTION_SIZE = 320
# Advanced detection trains the Quick head first (cached trunk features, cheap) with at most this share of the
# budget, then fine-tunes the whole detector from it with the rest, unless less than MIN_FINE_TUNE_SHARE is left
# (cvlab-only; benchmarks/training.md)
QUICK_SHARE = 0.75
MIN_FINE_TUNE_SHARE = 0.2


def _validation_map(plan: Plan, records: list[dict]):
    """mAP@0.5 of evaluation records, as the Performance page computes it (None when it is undefined)."""
    from cvlab import metrics
    from cvlab.performance import performance_from_records

    if not records:
        return None
    tags = [{"id": t.id, "name": t.name, "type": t.type} for t in plan.tags]
    m = performance_from_records(records, tags, "ObjectDetection").average_precision
    return round(float(m), 4) if metrics.is_defined(m) else None


def _rarest_tag_strata(tags, images) -> list[int]:
    """Each image's rarest tag, as its position in `tags`: stratifying on it puts every tag in the validation
    split when possible. Positions, not tag ids: ids are random uuids, and the split sorts its strata, so two
    projects with the same images and tags would otherwise get different splits."""
    index = {t.id: i for i, t in enumerate(tags)}
    freq = [sum(any(r.tag_id == t.id for r in im.regions) for im in images) for t in tags]
    return [min((index[r.tag_id] for r in im.regions if r.tag_id in index), key=lambda i: (freq[i], i))
            for im in images]


def train_detection(ws, plan: Plan, iteration, bar: Progress, cancelled) -> dict:
    """Train a detector for the plan and save its artefacts; returns the iteration's info."""
    from cvlab.nets import detector
    from cvlab.nets.preprocess import Preprocessing

    index = {t.id: i for i, t in enumerate(plan.tags)}

    def targets(im):
        return [(index[r.tag_id], r.left, r.top, r.width, r.height) for r in im.regions if r.tag_id in index]

    from cvlab import recipes
    from cvlab.embeddings import open_training_image

    recipe = recipes.for_domain(plan.domain)
    tr, va = validation_split(plan, _rarest_tag_strata(plan.tags, plan.train))
    val_images = [plan.train[i] for i in va]
    val_pixels = [open_training_image(ws, im) for im in val_images]  # decoded once: Advanced detects them twice

    def evaluate(images, pixels, split: str) -> list[dict]:
        """Evaluation records of the current detector on these images (one split)."""
        records = []
        for im, dets in zip(images, detector.detect(model, pixels) if images else []):
            truth_regions = [{"tag_id": r.tag_id, "left": r.left, "top": r.top, "width": r.width,
                              "height": r.height} for r in im.regions if r.tag_id in index]
            records.append({
                "image_id": im.id, "split": split, "fold": 0 if split == "cv" else None,
                "truth": {"tag_ids": sorted({r["tag_id"] for r in truth_regions}), "regions": truth_regions},
                "predictions": [{"tag_id": plan.tags[c].id, "probability": float(p),
                                 "bounding_box": {"left": float(l), "top": float(t), "width": float(w),
                                                  "height": float(h)}}
                                for c, p, l, t, w, h in dets if w > 0 and h > 0]})  # drop degenerate boxes
        return records

    timings, t0 = {}, time.monotonic()
    model = detector.build_detector(len(plan.tags), size=recipe.size, seed=plan.seed)
    train_images = [open_training_image(ws, plan.train[i]) for i in tr]
    budget = plan.budget_hours * plan.seconds_per_budget_hour if plan.training_type == "Advanced" else None
    train_targets = [targets(plan.train[i]) for i in tr]
    bar(0.02, "training the detector")
    quick = detector.fit_detector(model, train_images, train_targets, advanced=False,  # Quick, or Advanced's start
                                  time_budget_s=None if budget is None else QUICK_SHARE * budget,
                                  epochs=plan.detection_epochs or recipe.quick_epochs, seed=plan.seed,
                                  progress=lambda f, m="": bar(0.02 + (0.85 if budget is None else 0.3) * f, m),
                                  cancel=cancelled)
    info, details, val_records = quick, None, None
    left = None if budget is None else budget - (time.monotonic() - t0)
    if budget is not None and not cancelled() and left < MIN_FINE_TUNE_SHARE * budget:
        info = dict(quick, kept="quick")
        details = (f"The Quick head took {budget - left:.0f} s of the {budget:g} s budget, too little was left to "
                   "fine-tune the whole detector: kept the Quick-trained detector. Reserve more budget hours.")
    elif budget is not None and not cancelled():
        # Advanced = LP-FT for the detector: fine-tune everything, with box-aware augmentation, from the Quick
        # head for the rest of the budget; keep it only if it beats the Quick model on the validation split
        quick_state = {k: v.clone() for k, v in model.state_dict().items()}
        tuned = detector.fit_detector(model, train_images, train_targets, advanced=True, time_budget_s=left,
                                      epochs=plan.detection_epochs, scale=recipe.advanced_scale, seed=plan.seed,
                                      progress=lambda f, m="": bar(0.32 + 0.55 * f, m), cancel=cancelled)
        tuned_records = evaluate(val_images, val_pixels, "cv")
        tuned_state = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(quick_state)
        val_records = evaluate(val_images, val_pixels, "cv")
        scores = {"fine_tuned": _validation_map(plan, tuned_records), "quick": _validation_map(plan, val_records)}
        kept = scores["fine_tuned"] is not None and (scores["quick"] is None or scores["fine_tuned"] > scores["quick"])
        if kept:
            model.load_state_dict(tuned_state)
            val_records = tuned_records
        info = dict(tuned if kept else quick, quick=jsonable(quick), advanced=jsonable(tuned),
                    validation_mAP=scores, kept="fine_tuned" if kept else "quick")
        fmt = lambda v: "undefined" if v is None else f"{v:.3f}"  # noqa: E731
        details = (f"Fine-tuned detector kept: validation mAP@0.5 {fmt(scores['fine_tuned'])} against the Quick "
                   f"head's {fmt(scores['quick'])}." if kept else
                   f"Fine-tuning did not beat the Quick head on the validation split (mAP@0.5 "
                   f"{fmt(scores['fine_tuned'])} against {fmt(scores['quick'])}): kept the Quick-trained detector.")
    timings["fit_s"] = round(time.monotonic() - t0, 2)
    if cancelled():
        raise InterruptedError("Cancelled")
    model.eval()
    bar(0.9, "evaluating")
    if val_records is None:
        val_records = evaluate(val_images, val_pixels, "cv")
    records = val_records + evaluate(plan.holdout, [open_training_image(ws, im) for im in plan.holdout], "holdout")
    scheme = (f"validation split: {len(va)} of {len(plan.train)} training images held back from training the "
              "detector")
    extra = {"fit": jsonable(info), "validation_image_ids": [plan.train[i].id for i in va],
             "recipe": recipe.to_dict()}
    if details:
        extra["training_details"] = details
    return save(ws, plan, iteration, model, records, 1, scheme, Preprocessing(size=recipe.size), timings,
                 extra, head="detector", backbone="lite0")

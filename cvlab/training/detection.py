"""Object detection training through ``cvlab.nets.detector``, evaluated on a seeded validation split."""
from __future__ import annotations

import time

from .outputs import jsonable, save
from .plan import Plan, validation_split
from .progress import Progress

DETECTION_SIZE = 320


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

    tr, va = validation_split(plan, _rarest_tag_strata(plan.tags, plan.train))
    timings, t0 = {}, time.monotonic()
    model = detector.build_detector(len(plan.tags), size=DETECTION_SIZE, seed=plan.seed)
    train_images = [ws.open_image(plan.train[i]) for i in tr]
    budget = plan.budget_hours * plan.seconds_per_budget_hour if plan.training_type == "Advanced" else None
    bar(0.02, "training the detector")
    info = detector.fit_detector(model, train_images, [targets(plan.train[i]) for i in tr],
                                 advanced=plan.training_type == "Advanced", time_budget_s=budget,
                                 epochs=plan.detection_epochs,
                                 seed=plan.seed, progress=lambda f, m="": bar(0.02 + 0.85 * f, m),
                                 cancel=cancelled)
    timings["fit_s"] = round(time.monotonic() - t0, 2)
    if cancelled():
        raise InterruptedError("Cancelled")
    model.eval()
    bar(0.9, "evaluating")
    records = []
    for split, images in (("cv", [plan.train[i] for i in va]), ("holdout", plan.holdout)):
        found = detector.detect(model, [ws.open_image(im) for im in images]) if images else []
        for im, dets in zip(images, found):
            truth_regions = [{"tag_id": r.tag_id, "left": r.left, "top": r.top, "width": r.width,
                              "height": r.height} for r in im.regions if r.tag_id in index]
            records.append({
                "image_id": im.id, "split": split, "fold": 0 if split == "cv" else None,
                "truth": {"tag_ids": sorted({r["tag_id"] for r in truth_regions}), "regions": truth_regions},
                "predictions": [{"tag_id": plan.tags[c].id, "probability": float(p),
                                 "bounding_box": {"left": float(l), "top": float(t), "width": float(w),
                                                  "height": float(h)}}
                                for c, p, l, t, w, h in dets if w > 0 and h > 0]})  # drop degenerate boxes
    scheme = (f"validation split: {len(va)} of {len(plan.train)} training images held back from training the "
              "detector")
    extra = {"fit": jsonable(info), "validation_image_ids": [plan.train[i].id for i in va]}
    return save(ws, plan, iteration, model, records, 1, scheme, Preprocessing(size=DETECTION_SIZE), timings,
                 extra, head="detector", backbone="lite0")

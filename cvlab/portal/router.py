"""``/cvlab/portal/...``: what the portal needs from outside Azure's public Training and Prediction APIs. In cvlab.

- ``session``: who the training key belongs to (the resource's owner, a workshop seat, the instructor) and the
  training facts the Train dialog shows (one budget hour in lab seconds, the minimum images per tag);
- ``resources``: the list behind the gallery's settings gear (Azure's shows each resource's key and endpoint and the
  prediction resource's id, from Azure Resource Manager rather than the Custom Vision APIs);
- ``outbox``: the training notification e-mails, written to files instead of being sent (``cvlab.portal.outbox``);
- ``mistakes`` and ``extras``: the red frames of Training Images and the Performance page's cvlab extras (F1,
  mAP@[.5:.95], PR curves, the held-out view), computed by ``cvlab.performance`` like every other metric.

Every route wants the training key in the ``Training-Key`` header (never in the URL) and answers for the caller's
own workspace: a workshop seat's key sees that seat only.
"""
from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from cvlab.errors import CvlabError

router = APIRouter(prefix="/cvlab/portal", tags=["portal (cvlab only)"])

TRAINING_RESOURCE = "cvlab"                 # the lab's "-Prediction" suffix tells the two apart, as on Azure
PREDICTION_RESOURCE = "cvlab-Prediction"


class Caller:
    """The workspace context a training key opens, and what the key is (owner, instructor or seat)."""

    def __init__(self, ctx, role: str, seat: str | None, base_url: str):
        self.ctx, self.role, self.seat, self.base_url = ctx, role, seat, base_url

    @property
    def ws(self):
        return self.ctx.ws


def caller(request: Request) -> Caller:
    from cvlab.service.auth import key_ok, presented_keys
    base = f"{request.url.scheme}://{request.url.netloc}"
    main = request.app.state.ctx
    presented = presented_keys(request.headers, {}, "training")  # headers only: a key never travels in a URL
    seats = getattr(main, "seats", None)
    if presented and key_ok(presented, main.keys.training_key):
        return Caller(main, "instructor" if seats is not None else "owner", None, base)
    if presented and seats is not None and seats.admit(request.scope, "training", presented):
        ctx = request.scope["cvlab.ctx"]
        return Caller(ctx, "seat", getattr(ctx, "seat", None), base)
    raise CvlabError("Unauthorized", "Access denied: this training key is not accepted here. Sign in again with the "
                     "training key `cvlab serve` printed (or your seat's key from the workshop handout).", status=401)


CallerDep = Annotated[Caller, Depends(caller)]


@router.get("/session", summary="Who this training key is, and the training facts the portal shows")
def get_session(who: CallerDep):
    from cvlab import __version__, config, rules
    return {"role": who.role, "seat": who.seat, "workshop": who.role in ("instructor", "seat"),
            "tier": who.ws.tier, "version": __version__,
            "training": {"secondsPerBudgetHour": config.settings().seconds_per_budget_hour, "minimumBudgetHours": 1,
                         "minImagesPerTag": {t: rules.min_images_per_tag(t)
                                             for t in ("Classification", "ObjectDetection")}}}


@router.get("/resources", summary="The training and prediction resources behind the gallery's settings gear")
def get_resources(who: CallerDep):
    keys = who.ctx.keys
    name = TRAINING_RESOURCE if who.seat is None else f"{TRAINING_RESOURCE}-{who.seat}"
    return {"resources": [
        {"kind": "training", "name": name, "endpoint": who.base_url, "key": keys.training_key,
         "pricingTier": who.ws.tier},
        {"kind": "prediction", "name": f"{name}-Prediction" if who.seat else PREDICTION_RESOURCE,
         "endpoint": who.base_url, "key": keys.prediction_key, "resourceId": keys.prediction_resource_id,
         "pricingTier": who.ws.tier}]}


# ---- notification e-mails --------------------------------------------------------------------------------------
@router.post("/projects/{projectId}/iterations/{iterationId}/notification",
             summary="Write an e-mail to the outbox when this iteration's training ends")
def post_notification(who: CallerDep, projectId: str, iterationId: str, address: str = Query(...)):
    from . import outbox
    return outbox.subscribe(who.ws, projectId, iterationId, address, portal_url=who.base_url)


@router.get("/outbox", summary="The training notification e-mails written so far, newest first")
async def get_outbox(who: CallerDep):
    from . import outbox
    return {"folder": str(outbox.folder(who.ws)), "messages": await run_in_threadpool(outbox.messages, who.ws)}


# ---- Performance extras and Training Images' red frames --------------------------------------------------------
def _fraction(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise CvlabError("BadRequestInvalid", f"{name} is a fraction between 0 and 1 (got {value}); 50% is 0.5.")
    return value


@router.get("/projects/{projectId}/iterations/{iterationId}/mistakes",
            summary="Training images the iteration mispredicted at the thresholds (the red frames)")
def get_mistakes(who: CallerDep, projectId: str, iterationId: str, threshold: float = 0.5,
                 overlapThreshold: float = 0.5):
    from cvlab.performance import load_evaluation
    ev = load_evaluation(who.ws, projectId, iterationId)
    wrong = ev.mistakes(_fraction("threshold", threshold), _fraction("overlapThreshold", overlapThreshold))
    return {"threshold": threshold, "overlapThreshold": overlapThreshold,
            "images": [{"imageId": m["image_id"],
                        "falsePositives": [x["tag_name"] for x in m["false_positives"]],
                        "falseNegatives": [x["tag_name"] for x in m["false_negatives"]]} for m in wrong]}


_SPLITS: dict[tuple, list[str]] = {}


def _splits(ws, project_id: str, iteration_id: str) -> list[str]:
    """The splits an iteration's evaluation.json holds, read once per file version (it can be megabytes)."""
    from cvlab.performance import load_evaluation_dict
    path = ws.iteration_dir(iteration_id) / "evaluation.json"
    key = (str(path), path.stat().st_mtime_ns if path.exists() else 0)
    if key not in _SPLITS:
        found = {r.get("split", "cv") for r in load_evaluation_dict(ws, project_id, iteration_id).get("records", [])}
        _SPLITS[key] = [s for s in ("cv", "holdout") if s in found]
    return _SPLITS[key]


@router.get("/projects/{projectId}/iterations/{iterationId}/extras",
            summary="F1, mAP@[.5:.95], PR curves and the held-out view of an iteration (cvlab extras)")
def get_extras(who: CallerDep, projectId: str, iterationId: str, threshold: float = 0.5,
               overlapThreshold: float = 0.5, split: str = "cv"):
    from cvlab.metrics import json_number
    from cvlab.performance import load_evaluation
    from cvlab.service import wire
    if split not in ("cv", "holdout"):
        raise CvlabError("BadRequestInvalid", f"split is 'cv' or 'holdout', not {split!r}.")
    threshold = _fraction("threshold", threshold)
    overlap = _fraction("overlapThreshold", overlapThreshold)
    folds = len(load_evaluation(who.ws, projectId, iterationId, "cv").folds)  # parsed once, then cached
    splits = _splits(who.ws, projectId, iterationId)
    if split not in splits:
        raise CvlabError("NotFoundIterationPerformance", "This iteration has no held-out images: set some aside "
                         "(image metadata holdout=true) and train again to see the held-out view.")
    ev = load_evaluation(who.ws, projectId, iterationId, split)
    perf = ev.performance(threshold, overlap)
    curves = ev.pr_curves(overlap)

    def curve(tag_id, points: int = 200):
        arrays = curves.get(tag_id, ((), (), ()))
        n = len(arrays[0])
        keep = sorted({round(i * (n - 1) / (points - 1)) for i in range(points)}) if n > points else range(n)
        thresholds, precision, recall = ([float(a[i]) if math.isfinite(a[i]) else None for i in keep]
                                         for a in arrays)
        return {"thresholds": thresholds, "precision": precision, "recall": recall}

    return {"split": split, "splits": splits, "kFolds": folds,
            "imageCount": perf.image_count, "threshold": threshold, "overlapThreshold": perf.overlap_threshold,
            "performance": wire.iteration_performance(perf), "f1": json_number(perf.f1),
            "map5095": json_number(perf.map_50_95) if perf.map_50_95 is not None else None,
            "perTag": [{"id": t.id, "name": t.name, "f1": json_number(t.f1), "truePositives": t.true_positives,
                        "falsePositives": t.false_positives, "falseNegatives": t.false_negatives,
                        "curve": curve(t.id)} for t in perf.per_tag_performance]}

"""Stored predictions (Azure's Predictions tab): queried with a PredictionQueryToken, added to training."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Iterable

from cvlab import rules
from cvlab.errors import CvlabError
from cvlab.model import ImageCreateSummary, ImageEntry, StoredPrediction
from cvlab.service import wire

from .pages import QUERY_ERROR, decode_continuation, encode_continuation, max_count
from .uncertainty import rank_by_uncertainty, stored_prediction_kind, suggestion_score

PREDICTION_ORDER_BY = tuple(rules.ORDER_BY) + ("Suggested",)


@dataclass
class PredictionQueryResult:
    """Azure's PredictionQueryResult: the token for the next page and this page's stored predictions."""

    token: dict
    results: list[StoredPrediction] = field(default_factory=list)


def _tags(ws, project_id: str, tags) -> list[dict]:
    """The query's tags, each a tag of this project with 0 <= min_threshold <= max_threshold <= 1."""
    known = {t.id for t in ws.get_tags(project_id)}
    out = []
    for t in tags or []:
        tid = str(t.get("id") or "").strip().lower()
        if tid not in known:
            raise CvlabError("NotFoundTag", f"The query's tag {tid or '(missing id)'!r} is not a tag of this project.")
        lo, hi = t.get("min_threshold"), t.get("max_threshold")
        lo, hi = (0.0 if lo is None else float(lo)), (1.0 if hi is None else float(hi))
        if not (0.0 <= lo <= hi <= 1.0):
            raise CvlabError(QUERY_ERROR, f"Tag thresholds must satisfy 0 <= minThreshold <= maxThreshold <= 1; got "
                             f"{lo}..{hi}.")
        out.append({"id": tid, "min_threshold": lo, "max_threshold": hi})
    return out


def query_predictions(ws, project_id: str, token=None) -> PredictionQueryResult:
    """Stored predictions for an Azure PredictionQueryToken (camelCase or snake_case keys, read by
    ``cvlab.service.wire.prediction_query``): tag thresholds, time range, application, iteration, ``orderBy``
    Newest / Oldest / Suggested (most uncertain first), ``maxCount`` per page and ``continuation`` (from the
    previous result's token).

    >>> page = query_predictions(ws, project.id, {"orderBy": "Suggested", "maxCount": 10})   # doctest: +SKIP
    >>> next_page = query_predictions(ws, project.id, page.token)                             # doctest: +SKIP
    """
    q = wire.prediction_query(token)
    p = ws.get_project(project_id)
    order = q.get("order_by") or "Newest"
    rules.check_choice(order, PREDICTION_ORDER_BY, "orderBy", QUERY_ERROR)
    take = max_count(q.get("max_count"), "BadRequestPredictionResultsExceededCount")
    skip = decode_continuation(q.get("continuation"))
    tags = _tags(ws, p.id, q.get("tags"))
    start, end = q.get("start_time"), q.get("end_time")
    if start and end and start > end:
        raise CvlabError(QUERY_ERROR, "startTime is after endTime: swap them.")
    iteration_id = q.get("iteration_id") or None
    if iteration_id:
        ws.get_iteration(p.id, iteration_id)
    filters = dict(iteration_id=iteration_id, tags=tags, application=q.get("application"), start_time=start,
                   end_time=end)
    if order == "Suggested":
        found = ws.query_predictions(p.id, order_by="Newest", max_count=2**31, skip=0, **filters)
        kinds: dict[str | None, str] = {}

        def score(sp: StoredPrediction) -> float:
            if sp.iteration_id not in kinds:
                kinds[sp.iteration_id] = stored_prediction_kind(ws, p.id, sp)
            return suggestion_score(sp.predictions, kinds[sp.iteration_id])

        found = rank_by_uncertainty(found, score)[skip:skip + take + 1]
    else:
        found = ws.query_predictions(p.id, order_by=order, max_count=take + 1, skip=skip, **filters)
    state = {"session": q.get("session") or str(uuid.uuid4()),
             "continuation": encode_continuation(skip + take) if len(found) > take else None,
             "max_count": take, "order_by": order, "tags": tags, "iteration_id": iteration_id,
             "start_time": start, "end_time": end, "application": q.get("application")}
    return PredictionQueryResult(wire.prediction_query_token(state), found[:take])


def add_predictions_to_training(ws, project_id: str, items: Iterable, tag_ids=None,
                                metadata: dict | None = None) -> ImageCreateSummary:
    """Azure's create_images_from_predictions: stored prediction images become training images with the
    (corrected) tags or regions given, in one ``ws.create_images`` call so every image rule applies.

    ``items``: ``(prediction_id, tag_ids, regions)`` tuples or dicts ``{id, tag_ids, regions}`` (regions as
    ``{tag_id, left, top, width, height}``); ``tag_ids`` apply to every image.  Unknown prediction ids are
    refused before anything is created.  The stored predictions stay (they expire after 30 days)."""
    p = ws.get_project(project_id)
    entries, missing = [], []
    for item in items:
        if isinstance(item, dict):
            pid = item.get("id", item.get("prediction_id"))
            tags, regions = item.get("tag_ids", item.get("tagIds")), item.get("regions")
        else:
            try:
                pid, tags, regions = (tuple(item) + (None, None))[:3]
            except TypeError:
                raise CvlabError("BadRequestImageBatch", "Each item is (prediction_id, tag_ids, regions) or a dict "
                                 "{id, tag_ids, regions}.") from None
        try:
            stored = ws.get_prediction(p.id, pid)
        except CvlabError as e:
            if e.code != "NotFound":
                raise
            missing.append(str(pid))
            continue
        entries.append(ImageEntry(data=ws.read_image_bytes(stored), name=None, tag_ids=tuple(tags or ()),
                                  regions=tuple(regions or ()), source_url=stored.id))
    if missing:
        raise CvlabError("NotFound", f"No stored prediction with id(s) {missing[:5]} in project {p.name!r} (stored "
                         "predictions expire after 30 days): nothing was added. Use ids from query_predictions.")
    return ws.create_images(p.id, entries, tag_ids=tag_ids, metadata=metadata)

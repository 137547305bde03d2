"""Active learning: how unsure a model is, the smart labeler's suggestions and the Predictions tab.

Uncertainty (``prediction_uncertainty``; 0 = sure, 1 = undecided; Azure's ``predictionUncertainty``):

- Multiclass classification: ``1 - (p1 - p2)``, one minus the *margin* between the two most probable tags
  (margin sampling: an image the model hesitates between two tags on is the one worth labelling).
- Multilabel classification: ``max_t (1 - |2 p_t - 1|)``, how close the most undecided tag's sigmoid is to 0.5
  (each tag is its own yes/no question; one open question is enough to need a human).
- Object detection: ``1 - top box probability`` (boxes below ``DETECTION_FLOOR`` are noise): an image where even
  the detector's best box is unsure holds objects it has not learnt yet; an image with no box above the floor
  scores 1.0 (the model sees nothing there, which is worth a look).  A per-box ambiguity (``1 - |2 p - 1|``)
  averaged or maximised over boxes saturates near 1 on nearly every image of a young detector, whose many weak
  boxes hover around 0.5, so it cannot rank images.

The smart labeler's order (``query_suggested_images``, ``UncertaintyDescending``):

- Classification: uncertainty *spread out* (``spread_order``): each next image maximises
  ``uncertainty x distance ** DIVERSITY``, the distance being the cosine distance of its cached embedding
  (``cvlab.embeddings``) to the nearest training image or image already suggested.  Plain top-uncertainty fills
  a batch of ten with near-copies of one confusing case; from a cold start it also piles onto whichever tag the
  young model confuses most (``benchmarks/active_learning.md`` has the numbers).  Information density, k-means /
  TypiClust picks, BADGE and class-balanced picks did no better on development data
  (``benchmarks/active_learning_replay.py``).
- Object detection: how many objects the detector clearly sees (``suggestion_score``: summed squared box
  probability), most first, not spread.  A detector learns from boxes; a frame with nobody in it teaches it
  nothing (without regions it is not even trained on), yet ``1 - top box`` ranks exactly those frames first,
  and the spread seeks them out too (they lie far from every training image).  Squaring keeps a cluttered empty
  frame's many weak false positives from outranking one clear worker, which a plain sum did not.  Measured
  (``benchmarks/active_learning.md``): on a pool that is 60 % empty frames it beats random by 0.03-0.05 mAP per
  round on the test data (+0.06-0.11 on development data); on a pool where every image holds workers it is
  level with random (the detector learns ``site`` from ~30 images, whichever they are).

An iteration never changes, so its predictions are cached per (iteration, image content): in memory and as
``<iteration dir>/suggestions/<sha256>.json`` (removed with the iteration).  Ranking stored predictions
(``orderBy = Suggested``) uses the predictions stored with them, no model needed.

``learning_curve`` runs the experiment behind ``benchmarks/active_learning.py`` and notebook 07: add the most
uncertain vs random unlabelled images round after round and score each model on a held-out set.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from cvlab import rules
from cvlab.errors import CvlabError
from cvlab.model import Image, ImageCreateSummary, StoredPrediction

DETECTION_FLOOR = 0.05
DIVERSITY = 4.0      # spread_order's distance exponent (0 = plain uncertainty order); chosen on development data
SORT_BY = ("UncertaintyAscending", "UncertaintyDescending")
PREDICTION_ORDER_BY = tuple(rules.ORDER_BY) + ("Suggested",)
PAGE = 50            # default maxCount of a query page (as the REST service)
_BATCH = 16          # images per predictor call
_QUERY = "BadRequestPredictionInvalidQueryParameters"


# ---------------------------------------------------------------------------------------------------------------
# uncertainty
# ---------------------------------------------------------------------------------------------------------------
def _ambiguity(p) -> np.ndarray:
    """1 at probability 0.5, 0 at 0 or 1."""
    return 1.0 - np.abs(2.0 * np.asarray(p, dtype=np.float64) - 1.0)


def _probabilities(predictions: Sequence[dict]) -> np.ndarray:
    probs = np.array([float(p["probability"]) for p in predictions], dtype=np.float64)
    if np.any((probs < 0) | (probs > 1)) or np.any(np.isnan(probs)):
        raise CvlabError("BadRequestInvalid", "Prediction probabilities must lie between 0 and 1.")
    return probs


def prediction_uncertainty(predictions: Sequence[dict], kind: str) -> float:
    """How undecided a model is on one image (0 = sure, 1 = undecided); ``kind`` is ``"Multiclass"``,
    ``"Multilabel"`` or ``"ObjectDetection"`` (see the module docstring for the definitions)."""
    probs = _probabilities(predictions)
    if kind == "Multiclass":
        if probs.size == 0:
            return 1.0
        top = np.sort(probs)[::-1]
        second = top[1] if top.size > 1 else 0.0
        return float(np.clip(1.0 - (top[0] - second), 0.0, 1.0))
    if kind == "Multilabel":
        return float(_ambiguity(probs).max()) if probs.size else 1.0
    if kind == "ObjectDetection":
        kept = probs[probs >= DETECTION_FLOOR]
        return float(1.0 - kept.max()) if kept.size else 1.0
    raise CvlabError("BadRequestInvalid", f"Uncertainty kind {kind!r}: use Multiclass, Multilabel or ObjectDetection.")


def suggestion_score(predictions: Sequence[dict], kind: str) -> float:
    """What the smart labeler ranks images by (higher = label sooner).  Classification: the uncertainty.
    Detection: the summed *squared* probability of the boxes above ``DETECTION_FLOOR``, roughly how many objects
    the detector clearly sees.  A detector learns from boxes, and an image with nothing in it teaches it nothing
    (it is not even trained on: no regions), yet ``1 - top box`` ranks exactly those images first.  Squaring
    lets one clear worker (0.9 -> 0.81) outrank six false positives on scaffolding (6 x 0.3 -> 0.54), which a
    plain sum (0.9 < 1.8) does not: on frames from a fixed camera, many of them empty, that is the difference
    between picking workers and picking clutter (``benchmarks/active_learning.md``)."""
    if kind != "ObjectDetection":
        return prediction_uncertainty(predictions, kind)
    probs = _probabilities(predictions)
    kept = probs[probs >= DETECTION_FLOOR]
    return float((kept * kept).sum())


def rank_by_uncertainty(items: Iterable, uncertainty: Callable[[Any], float], descending: bool = True) -> list:
    """Items sorted by uncertainty (most uncertain first when ``descending``); ties keep the input order."""
    scored = [(uncertainty(x), i, x) for i, x in enumerate(items)]
    scored.sort(key=lambda t: (-t[0] if descending else t[0], t[1]))
    return [x for _, _, x in scored]


def centred_unit(candidates: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets of embeddings centred on their joint mean and scaled to unit length, so cosine similarities
    compare directions within this pool rather than the direction all embeddings share."""
    cand = np.asarray(candidates, np.float64)
    known = np.asarray(known, np.float64).reshape(-1, cand.shape[1])
    centre = np.vstack([cand, known]).mean(0)
    unit = lambda x: (x - centre) / np.maximum(np.linalg.norm(x - centre, axis=1, keepdims=True), 1e-12)  # noqa: E731
    return unit(cand), unit(known)


def spread_order(uncertainty: Sequence[float], candidates: np.ndarray, known: np.ndarray,
                 power: float | None = None, head: int | None = None) -> list[int]:
    """Candidate indices, most uncertain first but spread out: greedily, the next pick maximises
    ``uncertainty x d ** power``, ``d`` = cosine distance (embeddings centred on their mean) to the nearest
    ``known`` (labelled) embedding or earlier pick.  Only the first ``head`` picks are spread (a page holds at
    most ``rules.limit("take")``); the rest follow by uncertainty.  ``power`` 0 is the plain uncertainty order."""
    u = np.asarray(uncertainty, dtype=np.float64)
    power = DIVERSITY if power is None else float(power)
    head = min(len(u), rules.limit("take") if head is None else int(head))
    plain = [int(i) for i in np.argsort(-u, kind="stable")]
    if power == 0 or len(u) < 2:
        return plain
    cand, known = centred_unit(candidates, known)
    dist = (1.0 - known @ cand.T).min(0) if len(known) else np.ones(len(cand))
    picked: list[int] = []
    free = np.ones(len(u), bool)
    for _ in range(head):
        score = np.where(free, u * np.clip(dist, 1e-9, None) ** power, -np.inf)
        j = int(np.argmax(score))  # ties: the earlier candidate
        picked.append(j)
        free[j] = False
        dist = np.minimum(dist, 1.0 - cand @ cand[j])
    return picked + [i for i in plain if free[i]]


def _kind(project_type: str, classification_type: str | None) -> str:
    return "ObjectDetection" if project_type == "ObjectDetection" else (classification_type or "Multiclass")


def iteration_kind(ws, project_id: str, iteration) -> str:
    """The uncertainty kind of an iteration's predictions (its domain type and classification type)."""
    from cvlab.domains import get_domain

    project = ws.get_project(project_id)
    try:
        ptype = get_domain(iteration.domain_id).type if iteration.domain_id else project.project_type
    except CvlabError:
        ptype = project.project_type
    return _kind(ptype, iteration.classification_type or project.classification_type)


def stored_prediction_kind(ws, project_id: str, stored: StoredPrediction) -> str:
    """The uncertainty kind of a stored prediction (from the iteration that made it, else the project)."""
    if stored.iteration_id:
        try:
            return iteration_kind(ws, project_id, ws.get_iteration(project_id, stored.iteration_id))
        except CvlabError:
            pass  # the iteration was deleted since: fall back to the project
    project = ws.get_project(project_id)
    if any(p.get("bounding_box") for p in stored.predictions):
        return "ObjectDetection"
    return _kind(project.project_type, project.classification_type)


# ---------------------------------------------------------------------------------------------------------------
# predictions of an iteration, cached per (iteration, image content)
# ---------------------------------------------------------------------------------------------------------------
_memory: dict[tuple[str, str], list[dict]] = {}
_memory_lock = threading.Lock()
_MEMORY_CAP = 50_000


def _cache_file(ws, iteration_id: str, sha256: str) -> Path:
    return Path(ws.iteration_dir(iteration_id)) / "suggestions" / f"{sha256}.json"


def _remember(key: tuple[str, str], preds: list[dict]) -> None:
    with _memory_lock:
        if len(_memory) >= _MEMORY_CAP:
            _memory.clear()
        _memory[key] = preds


def _save_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _completed(ws, project_id: str, iteration_id: str):
    it = ws.get_iteration(project_id, iteration_id)
    if it.status != "Completed":
        raise CvlabError("BadRequestIterationIsNotTrained", f"{it.name} is {it.status}: suggestions need a "
                         "Completed iteration (wait for training to finish, or pick another iteration).")
    return it


def iteration_predictions(ws, project_id: str, iteration_id: str, images: Sequence[Image],
                          predictor=None) -> dict[str, list[dict]]:
    """Predictions of a Completed iteration for workspace images, ``{image id: [prediction dicts]}``.

    Computed once per (iteration, image content) and cached; ``predictor`` (anything with ``predict_batch``,
    e.g. the REST service's shared Predictor behind its inference semaphore) defaults to ``Predictor.load``.
    """
    it = _completed(ws, project_id, iteration_id)
    out: dict[str, list[dict]] = {}
    todo: list[Image] = []
    for im in images:
        key = (it.id, im.sha256)
        with _memory_lock:
            hit = _memory.get((str(ws.path),) + key)
        if hit is None:
            path = _cache_file(ws, it.id, im.sha256)
            try:
                hit = json.loads(path.read_text())
                _remember((str(ws.path),) + key, hit)
            except (OSError, ValueError):
                hit = None  # not cached yet (or a damaged file): predict again
        if hit is None:
            todo.append(im)
        else:
            out[im.id] = hit
    if todo:
        if predictor is None:
            from cvlab.predict import Predictor

            predictor = Predictor.load(ws, it.id)
        for start in range(0, len(todo), _BATCH):
            chunk = todo[start:start + _BATCH]
            found = predictor.predict_batch([ws.read_image_bytes(im) for im in chunk])
            for im, preds in zip(chunk, found):
                preds = json.loads(json.dumps(preds))
                _save_json(_cache_file(ws, it.id, im.sha256), preds)
                _remember((str(ws.path), it.id, im.sha256), preds)
                out[im.id] = preds
    return out


# ---------------------------------------------------------------------------------------------------------------
# smart labeler: suggest_tags_and_regions, query_suggested_images, query_suggested_image_count
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class SuggestedTagAndRegion:
    """Azure's SuggestedTagAndRegion (snake_case); ``image`` is the workspace record (size, uris for the wire)."""

    id: str
    project_id: str
    iteration_id: str
    created: datetime
    predictions: list[dict]
    prediction_uncertainty: float
    image: Image | None = None


@dataclass
class SuggestedImageQuery:
    """Azure's SuggestedTagAndRegionQuery: the token to send back for the next page, and this page's results."""

    token: dict
    results: list[SuggestedTagAndRegion] = field(default_factory=list)


def _suggestion(project_id, it, im: Image, preds, kind) -> SuggestedTagAndRegion:
    return SuggestedTagAndRegion(id=im.id, project_id=project_id, iteration_id=it.id, created=im.created,
                                 predictions=preds, prediction_uncertainty=prediction_uncertainty(preds, kind),
                                 image=im)


def suggest_tags_and_regions(ws, project_id: str, iteration_id: str, image_ids: Sequence[str],
                             predictor=None) -> list[SuggestedTagAndRegion]:
    """The iteration's suggested tags (classification) or regions (detection) for up to 64 images, in order."""
    p = ws.get_project(project_id)
    ids = [str(i).strip().lower() for i in (image_ids or [])]
    if not ids:
        raise CvlabError("BadRequestInvalidIds", "Pass the ids of the images to get suggestions for.")
    cap = rules.limit("images_per_batch")
    if len(ids) > cap:
        raise CvlabError("BadRequestImageBatch", f"Ask for suggestions on at most {cap} images per call; "
                         f"got {len(ids)}.")
    it = _completed(ws, p.id, iteration_id)
    found = {im.id: im for im in ws.get_images(p.id, image_ids=ids, take=len(ids))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise CvlabError("NotFoundImage", f"These images are not in project {p.name!r}: {missing[:5]}.")
    images = [found[i] for i in ids]
    preds = iteration_predictions(ws, p.id, it.id, images, predictor)
    kind = iteration_kind(ws, p.id, it)
    return [_suggestion(p.id, it, im, preds[im.id], kind) for im in images]


def _tag_filter(ws, project_id: str, tag_ids, threshold) -> tuple[list[str] | None, float]:
    try:
        threshold = float(0.0 if threshold is None else threshold)
    except (TypeError, ValueError):
        raise CvlabError("BadRequestInvalid", f"threshold must be a number between 0 and 1, not {threshold!r}.") \
            from None
    if not 0.0 <= threshold <= 1.0:
        raise CvlabError("BadRequestInvalid", f"threshold must lie between 0 and 1, got {threshold}.")
    if not tag_ids:
        return None, threshold
    known = {t.id for t in ws.get_tags(project_id)}
    wanted = [str(t).strip().lower() for t in tag_ids]
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise CvlabError("NotFoundTag", f"tagIds has ids that are not tags of this project: {unknown[:5]}.")
    return wanted, threshold


def _matches(preds: list[dict], tag_ids: list[str] | None, threshold: float) -> bool:
    """Any prediction (tag or box) of one of ``tag_ids`` (all tags when None) at or above ``threshold``."""
    wanted = set(tag_ids) if tag_ids else None
    return any(p["probability"] >= threshold and (wanted is None or p["tag_id"] in wanted) for p in preds)


def _untagged_suggestions(ws, project_id, iteration_id, tag_ids, threshold, predictor):
    p = ws.get_project(project_id)
    it = _completed(ws, p.id, iteration_id)
    tag_ids, threshold = _tag_filter(ws, p.id, tag_ids, threshold)
    images = list(ws.iter_images(p.id, tagging_status="Untagged", order_by="Oldest"))
    preds = iteration_predictions(ws, p.id, it.id, images, predictor)
    kind = iteration_kind(ws, p.id, it)
    hits = [_suggestion(p.id, it, im, preds[im.id], kind) for im in images
            if _matches(preds[im.id], tag_ids, threshold)]
    return p, tag_ids, threshold, hits


def encode_continuation(offset: int) -> str:
    """An opaque continuation token (the same format the REST service uses)."""
    return base64.urlsafe_b64encode(f"offset:{int(offset)}".encode()).decode()


def decode_continuation(token: str | None) -> int:
    if not token:
        return 0
    try:
        kind, value = base64.urlsafe_b64decode(str(token).encode()).decode().split(":")
        if kind == "offset" and int(value) >= 0:
            return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise CvlabError(_QUERY, "The continuation token is not one cvlab returned: pass the previous result's token "
                     "back unchanged to get the next page.")


def _max_count(value, code: str) -> int:
    cap = rules.limit("take")
    try:
        n = PAGE if value is None else int(value)
    except (TypeError, ValueError):
        raise CvlabError(code, f"maxCount must be a whole number 1..{cap}, not {value!r}.") from None
    if not 0 < n <= cap:
        raise CvlabError(code, f"maxCount must be 1..{cap}, got {n}: page with the continuation token instead.")
    return n


def _smart_order(ws, project_id: str, iteration_id: str, hits: list[SuggestedTagAndRegion]) -> list:
    """The smart labeler's order.  Detection: ``suggestion_score``, most first.  Classification: ``spread_order``
    on the embeddings of the iteration's backbone (cached, so the training images of a Quick classification
    iteration cost nothing); known = tagged images not held out."""
    it = ws.get_iteration(project_id, iteration_id)
    if iteration_kind(ws, project_id, it) == "ObjectDetection":  # plain: spreading picks out empty frames
        return rank_by_uncertainty(hits, lambda s: suggestion_score(s.predictions, "ObjectDetection"))
    if len(hits) < 2 or DIVERSITY == 0:
        return rank_by_uncertainty(hits, lambda s: s.prediction_uncertainty)
    from cvlab import embeddings
    from cvlab.domains import get_domain
    from cvlab.nets.backbones import spec

    try:
        bb = spec(get_domain(it.domain_id or ws.get_project(project_id).domain_id).backbone)
    except CvlabError:
        bb = spec("lite0")  # a domain cvlab no longer lists: any backbone's embedding spreads the picks
    known = [im for im in ws.iter_images(project_id, tagging_status="Tagged")
             if str((im.metadata or {}).get("holdout", "")).strip().lower() not in ("true", "1", "yes")]
    vectors = embeddings.embed_images(ws, [h.image for h in hits] + known, bb.name, bb.input_size)
    order = spread_order([h.prediction_uncertainty for h in hits], vectors[:len(hits)], vectors[len(hits):])
    return [hits[i] for i in order]


def query_suggested_images(ws, project_id: str, iteration_id: str, tag_ids=None, threshold: float = 0.0,
                           sort_by: str = "UncertaintyDescending", max_count: int | None = PAGE,
                           continuation: str | None = None, session: str | None = None,
                           predictor=None) -> SuggestedImageQuery:
    """Untagged images the iteration predicts one of ``tag_ids`` on (any tag when None) with probability >=
    ``threshold``, one page at a time (pass ``result.token["continuation"]`` back).  ``UncertaintyDescending``:
    the smart labeler's order (``spread_order``: most uncertain first, spread over the embedding space);
    ``UncertaintyAscending``: plain least-uncertain first."""
    rules.check_choice(sort_by, SORT_BY, "sortBy", "BadRequestInvalid")
    take = _max_count(max_count, "BadRequestInvalid")
    skip = decode_continuation(continuation)
    _, tag_ids, threshold, hits = _untagged_suggestions(ws, project_id, iteration_id, tag_ids, threshold, predictor)
    if sort_by == "UncertaintyDescending":
        ranked = _smart_order(ws, project_id, iteration_id, hits)
    else:
        ranked = rank_by_uncertainty(hits, lambda s: s.prediction_uncertainty, descending=False)
    token = {"tagIds": tag_ids, "threshold": threshold, "session": session or str(uuid.uuid4()),
             "continuation": encode_continuation(skip + take) if len(ranked) > skip + take else None,
             "maxCount": take, "sortBy": sort_by}
    return SuggestedImageQuery(token, ranked[skip:skip + take])


def query_suggested_image_count(ws, project_id: str, iteration_id: str, tag_ids=None, threshold: float = 0.0,
                                predictor=None) -> dict[str, int]:
    """``{tag id: untagged images the iteration predicts that tag on with probability >= threshold}``
    (every tag of the project when ``tag_ids`` is None)."""
    p, tag_ids, threshold, hits = _untagged_suggestions(ws, project_id, iteration_id, tag_ids, threshold, predictor)
    tag_ids = tag_ids or [t.id for t in ws.get_tags(p.id)]
    return {t: sum(_matches(h.predictions, [t], threshold) for h in hits) for t in tag_ids}


# ---------------------------------------------------------------------------------------------------------------
# stored predictions: query with a PredictionQueryToken, add to training
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class PredictionQueryResult:
    """Azure's PredictionQueryResult: the token for the next page and this page's stored predictions."""

    token: dict
    results: list[StoredPrediction] = field(default_factory=list)


_TOKEN_KEYS = {"session": "session", "continuation": "continuation", "maxCount": "max_count",
               "max_count": "max_count", "orderBy": "order_by", "order_by": "order_by", "tags": "tags",
               "iterationId": "iteration_id", "iteration_id": "iteration_id", "startTime": "start_time",
               "start_time": "start_time", "endTime": "end_time", "end_time": "end_time",
               "application": "application"}


def _time(value, what: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise CvlabError(_QUERY, f"{what} {value!r} is not an ISO-8601 time (e.g. 2026-01-31T12:00:00Z).") \
                from None
    if not isinstance(value, datetime):
        raise CvlabError(_QUERY, f"{what} must be a time, not {type(value).__name__}.")
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _tags(ws, project_id: str, tags) -> list[dict]:
    known = {t.id for t in ws.get_tags(project_id)}
    out = []
    for t in tags or []:
        if not isinstance(t, dict):
            t = {"id": getattr(t, "id", None), "minThreshold": getattr(t, "min_threshold", None),
                 "maxThreshold": getattr(t, "max_threshold", None)}
        tid = str(t.get("id") or t.get("tag_id") or "").strip().lower()
        if tid not in known:
            raise CvlabError("NotFoundTag", f"The query's tag {tid or '(missing id)'!r} is not a tag of this project.")
        lo = t.get("minThreshold", t.get("min_threshold"))
        hi = t.get("maxThreshold", t.get("max_threshold"))
        lo, hi = (0.0 if lo is None else float(lo)), (1.0 if hi is None else float(hi))
        if not (0.0 <= lo <= hi <= 1.0):
            raise CvlabError(_QUERY, f"Tag thresholds must satisfy 0 <= minThreshold <= maxThreshold <= 1; got "
                             f"{lo}..{hi}.")
        out.append({"id": tid, "min_threshold": lo, "max_threshold": hi})
    return out


def query_predictions(ws, project_id: str, token: dict | None = None) -> PredictionQueryResult:
    """Stored predictions for an Azure PredictionQueryToken (camelCase or snake_case keys): tag thresholds,
    time range, application, iteration, ``orderBy`` Newest / Oldest / Suggested (most uncertain first),
    ``maxCount`` per page and ``continuation`` (from the previous result's token)."""
    raw = dict(token or {})
    unknown = sorted(k for k in raw if k not in _TOKEN_KEYS)
    if unknown:
        known = sorted(k for k in _TOKEN_KEYS if "_" not in k)
        raise CvlabError(_QUERY, f"Unknown query field(s) {unknown}: use {known}.")
    q = {_TOKEN_KEYS[k]: v for k, v in raw.items()}
    p = ws.get_project(project_id)
    order = q.get("order_by") or "Newest"
    rules.check_choice(order, PREDICTION_ORDER_BY, "orderBy", _QUERY)
    take = _max_count(q.get("max_count"), "BadRequestPredictionResultsExceededCount")
    skip = decode_continuation(q.get("continuation"))
    tags = _tags(ws, p.id, q.get("tags"))
    start, end = _time(q.get("start_time"), "startTime"), _time(q.get("end_time"), "endTime")
    if start and end and start > end:
        raise CvlabError(_QUERY, "startTime is after endTime: swap them.")
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
    out = {"session": q.get("session") or str(uuid.uuid4()),
           "continuation": encode_continuation(skip + take) if len(found) > take else None,
           "maxCount": take, "orderBy": order,
           "tags": [{"id": t["id"], "minThreshold": t["min_threshold"], "maxThreshold": t["max_threshold"]}
                    for t in tags],
           "iterationId": iteration_id, "startTime": start.isoformat() if start else None,
           "endTime": end.isoformat() if end else None, "application": q.get("application")}
    return PredictionQueryResult(out, found[:take])


def add_predictions_to_training(ws, project_id: str, items: Iterable, tag_ids=None,
                                metadata: dict | None = None) -> ImageCreateSummary:
    """Azure's create_images_from_predictions: stored prediction images become training images with the
    (corrected) tags or regions given, in one ``ws.create_images`` call so every image rule applies.

    ``items``: ``(prediction_id, tag_ids, regions)`` tuples or dicts ``{id, tag_ids, regions}`` (regions as
    ``{tag_id, left, top, width, height}``); ``tag_ids`` apply to every image.  Unknown prediction ids are
    refused before anything is created.  The stored predictions stay (they expire after 30 days)."""
    from cvlab.workspace import ImageEntry

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


# ---------------------------------------------------------------------------------------------------------------
# learning curves: uncertainty sampling vs random sampling
# ---------------------------------------------------------------------------------------------------------------
STRATEGIES = ("uncertainty", "random")  # the smart labeler's order (query_suggested_images) vs random
ABLATION = "uncertainty-plain"          # top uncertainty without the spread (what cvlab did before)


def _png(record) -> bytes:
    buf = io.BytesIO()
    record.load().convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def _split(records, tag_names, start_per_tag: int, test_size: int, pool_size: int, seed: int,
           first_empty: int | None = None):
    """Seeded split into (initial, test, pool) record indices; initial = the first shuffled images that still
    help some tag reach ``start_per_tag`` labelled images.  Records from ``first_empty`` on are empty frames:
    the pool (``pool_size`` counts them) holds all of them, mixed in a seeded order, in every split."""
    if first_empty is not None and first_empty < len(records):
        initial, test, pool = _split(records[:first_empty], tag_names, start_per_tag, test_size,
                                     pool_size - (len(records) - first_empty), seed)
        rng = np.random.default_rng(seed)
        return initial, test, [int(i) for i in rng.permutation(pool + list(range(first_empty, len(records))))]
    order = np.random.default_rng(seed).permutation(len(records))
    need = {t: start_per_tag for t in tag_names}
    initial, rest = [], []
    for i in order:
        tags = set(records[i].tags) | {r.tag for r in records[i].regions}
        if any(need.get(t, 0) > 0 for t in tags):
            initial.append(int(i))
            for t in tags:
                need[t] = need.get(t, 0) - 1
        else:
            rest.append(int(i))
    short = {t: n for t, n in need.items() if n > 0}
    if short or len(rest) < test_size + pool_size:
        raise CvlabError("BadRequest", f"Not enough generated images for this split (short tags {short}, "
                         f"{len(rest)} left for test {test_size} + pool {pool_size}): lower the sizes.")
    return initial, rest[:test_size], rest[test_size:test_size + pool_size]


def _labels_of(record, tag_ids: dict) -> dict:
    return {"tag_ids": [tag_ids[t] for t in record.tags],
            "regions": [{"tag_id": tag_ids[r.tag], "left": r.left, "top": r.top, "width": r.width,
                         "height": r.height} for r in record.regions]}


def _upload(ws, project_id, indices, data, records, tag_ids, labelled: bool, metadata=None) -> dict[str, int]:
    """Create images in batches of 64; returns {image id: record index}."""
    from cvlab.workspace import ImageEntry

    out: dict[str, int] = {}
    cap = rules.limit("images_per_batch")
    for start in range(0, len(indices), cap):
        chunk = indices[start:start + cap]
        entries = [ImageEntry(data=data[i], name=records[i].name,
                              **(_labels_of(records[i], tag_ids) if labelled else {})) for i in chunk]
        summary = ws.create_images(project_id, entries, metadata=metadata)
        for i, res in zip(chunk, summary.images):
            if res.status not in ("OK", "OKDuplicate") or res.image is None:
                raise CvlabError("ErrorUnknown", f"Could not add {records[i].name}: {res.status} {res.message}")
            out[res.image.id] = i
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    """Mean of the defined values (None: a metric undefined on that run)."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def learning_curve(dataset: str = "parts", *, rounds: int = 3, per_round: int = 10, start_per_tag: int | None = None,
                   pool_size: int = 100, test_size: int = 100, seeds: Sequence[int] = (0,), data_seed: int = 0,
                   image_size: int | None = None, detection_epochs: int | None = None, workspace=None,
                   backend: str | None = None, progress: bool = True, strategies: Sequence[str] = STRATEGIES,
                   random_draws: int = 1, on_seed: Callable[[int, dict], None] | None = None,
                   empty_fraction: float = 0.0) -> dict:
    """Label ``per_round`` more images per round, chosen by uncertainty (the smart labeler's order) or at
    random, retrain (Quick training) and score each model on a held-out test set (metadata holdout=true):
    micro F1 at threshold 0.5 for classification, mAP@0.5 for detection.

    Per seed the images are split afresh (``start_per_tag`` labelled images per tag, default Azure's minimum:
    5 classification, 15 detection; a test set; an unlabelled pool); both strategies share round 0.  Returns
    ``{"curves": {strategy: {"labelled", "mean", "std", "runs"}}, "settings", "seconds", ...}`` (JSON-ready).
    ``workspace`` (a Workspace or folder) keeps the projects; default: a temporary folder, deleted after.
    ``detection_epochs`` fixes the detector's epochs (``CVLAB_DETECTION_EPOCHS``) to keep rounds short.
    ``on_seed(seed, {strategy: scores per round})`` is called as each seed finishes (for partial results).
    ``strategies`` may add ``ABLATION`` (plain top uncertainty); ``picked`` counts the tags of the images each
    strategy labelled (summed over seeds and rounds), to see a strategy lean on one tag.
    ``random_draws`` > 1 averages random over that many draws per seed (each its own project and trainings):
    one draw is a noisy baseline, its spread about 0.05 F1 per seed on ``parts``; the expected curve is the fair one.
    ``empty_fraction`` (detection): that share of the pool is empty frames, as most of a fixed site camera's
    footage; an empty frame shown to the oracle is deleted (nothing to draw, and it would stay untagged).
    """
    from tqdm.auto import tqdm

    from cvlab import datasets
    from cvlab.datasets.importing import resolve_domain
    from cvlab.metrics import json_number
    from cvlab.performance import get_iteration_performance
    from cvlab.predict import Predictor
    from cvlab.training import DETECTION_EPOCHS_ENV, train_project
    from cvlab.workspace import Workspace

    strategies = tuple(strategies)
    if set(strategies) - set(STRATEGIES + (ABLATION,)) or not set(STRATEGIES) <= set(strategies):
        raise CvlabError("BadRequest", f"strategies must include {STRATEGIES} and may add {ABLATION!r}.")
    if rounds < 1 or per_round < 1 or random_draws < 1 or not seeds:
        raise CvlabError("BadRequest", "rounds, per_round and random_draws must be at least 1, and seeds must not "
                         "be empty.")
    lanes = strategies + tuple(f"random#{d}" for d in range(1, random_draws))  # random#d: the d-th extra draw
    meta = datasets.info(dataset)
    ptype = meta.project_type
    start_per_tag = start_per_tag or rules.min_images_per_tag(ptype)
    if not 0.0 <= empty_fraction < 1.0 or (empty_fraction and ptype != "ObjectDetection"):
        raise CvlabError("BadRequest", f"empty_fraction={empty_fraction!r}: use 0 <= f < 1, on a detection dataset.")
    if pool_size < rounds * per_round:
        raise CvlabError("BadRequest", f"The pool ({pool_size}) must hold rounds x per_round = "
                         f"{rounds * per_round} images.")
    started = time.perf_counter()
    tmp = None
    if workspace is None:
        tmp = tempfile.TemporaryDirectory(prefix="cvlab-al-")
        ws = Workspace(tmp.name)
    else:
        ws = workspace if hasattr(workspace, "create_project") else Workspace(workspace)
    old_epochs = os.environ.get(DETECTION_EPOCHS_ENV)
    if detection_epochs is not None:
        os.environ[DETECTION_EPOCHS_ENV] = str(int(detection_epochs))
    metric = "mAP@0.5" if ptype == "ObjectDetection" else "F1@0.5"
    count = test_size + pool_size + 2 * start_per_tag * len(meta.tags)
    n_empty = int(round(empty_fraction * pool_size))
    records = datasets.generate(dataset, count, seed=data_seed, size=image_size)
    first_empty = len(records)
    records += datasets.generate(dataset, n_empty, seed=data_seed, size=image_size, empty=True) if n_empty else []
    data = [_png(r) for r in records]
    runs: dict[str, list[list[float | None]]] = {s: [] for s in strategies}
    counted = list(meta.tags) + (["(empty)"] if n_empty else [])
    picked: dict[str, dict[str, int]] = {s: {t: 0 for t in counted} for s in strategies}
    labelled_counts: list[int] = []
    trainings = len(seeds) * (len(strategies) - 1 + rounds * len(lanes))
    bar = tqdm(total=trainings, desc=f"active learning on {dataset}", disable=not progress)
    try:
        for seed in seeds:
            initial, test, pool = _split(records, meta.tags, start_per_tag, test_size, pool_size, seed, first_empty)
            labelled_counts = [len(initial) + r * per_round for r in range(rounds + 1)]
            projects = {}
            for strategy in lanes:
                p = ws.create_project(f"al {dataset} seed {seed} {strategy} {uuid.uuid4().hex[:6]}",
                                      domain_id=resolve_domain(None, ptype),
                                      classification_type=meta.classification_type)
                tag_ids = {t: ws.create_tag(p.id, t, type="Negative" if t == datasets.NEGATIVE and
                                            ptype == "Classification" else "Regular").id for t in meta.tags}
                _upload(ws, p.id, initial, data, records, tag_ids, True)
                _upload(ws, p.id, test, data, records, tag_ids, True, metadata={"holdout": "true"})
                unlabelled = _upload(ws, p.id, pool, data, records, tag_ids, False)
                projects[strategy] = (p, tag_ids, unlabelled)

            def train_and_score(project, previous=None):
                try:
                    it = train_project(ws, project.id, seed=seed, show_progress=False)
                except CvlabError as e:  # every pick was an empty frame (deleted): the same images, the same model
                    if previous is None or e.code != "BadRequestTrainingNotNeeded":
                        raise
                    bar.update(1)
                    return previous
                bar.update(1)
                if it.status != "Completed":
                    raise CvlabError("ErrorUnknown", f"Training {project.name} failed: {it.training_error_details}")
                perf = get_iteration_performance(ws, project.id, it.id, split="holdout")
                value = perf.average_precision if ptype == "ObjectDetection" else perf.f1
                return it, json_number(value)

            first, score0 = train_and_score(projects["uncertainty"][0])
            latest = {"uncertainty": first}
            if ABLATION in strategies:  # same images and seed as the first: its own copy of round 0
                latest[ABLATION] = train_and_score(projects[ABLATION][0])[0]
            curves = {s: [score0] for s in lanes}
            for r in range(1, rounds + 1):
                for strategy in lanes:
                    p, tag_ids, unlabelled = projects[strategy]
                    if not strategy.startswith("random"):
                        it = latest[strategy]
                        predictor = Predictor.load(ws, it.id, backend=backend) if backend else None
                        if strategy == "uncertainty":  # exactly what the smart labeler returns
                            found = query_suggested_images(ws, p.id, it.id, max_count=per_round,
                                                           predictor=predictor).results
                        else:
                            hits = _untagged_suggestions(ws, p.id, it.id, None, 0.0, predictor)[3]
                            found = rank_by_uncertainty(hits, lambda s: s.prediction_uncertainty)[:per_round]
                        chosen = [s.id for s in found]
                        Predictor.clear_cache()  # many iterations: keep only the models in use in memory
                    else:
                        # in generated order, not by (random) image id, so the draw repeats run to run
                        left = sorted((im.id for im in ws.iter_images(p.id, tagging_status="Untagged")),
                                      key=unlabelled.__getitem__)
                        draw = int(strategy.partition("#")[2] or 0)
                        rng = np.random.default_rng([seed, r] + ([draw] if draw else []))
                        chosen = [left[i] for i in rng.choice(len(left), size=per_round, replace=False)]
                    counts = picked[strategy.partition("#")[0]]
                    for image_id in chosen:  # the oracle: the generator's true labels
                        record = records[unlabelled[image_id]]
                        for t in set(record.tags) | {g.tag for g in record.regions}:
                            counts[t] += 1
                        labels = _labels_of(record, tag_ids)
                        if ptype == "ObjectDetection" and not labels["regions"]:
                            counts["(empty)"] += 1
                            ws.delete_images(p.id, [image_id])
                        elif ptype == "ObjectDetection":
                            ws.set_image_labels(p.id, image_id, regions=labels["regions"])
                        else:
                            ws.set_image_labels(p.id, image_id, tag_ids=labels["tag_ids"])
                    previous = (latest[strategy], curves[strategy][-1]) if strategy in latest else None
                    latest[strategy], score = train_and_score(p, previous)
                    curves[strategy].append(score)
            draws = [curves.pop(s) for s in lanes if s.startswith("random")]
            curves["random"] = [_mean([d[r] for d in draws]) for r in range(rounds + 1)]
            for s in strategies:
                runs[s].append(curves[s])
            if on_seed is not None:
                on_seed(seed, {"labelled": labelled_counts, **curves})
    finally:
        bar.close()
        if detection_epochs is not None:
            if old_epochs is None:
                os.environ.pop(DETECTION_EPOCHS_ENV, None)
            else:
                os.environ[DETECTION_EPOCHS_ENV] = old_epochs
        if tmp is not None:
            ws.close()
            tmp.cleanup()

    def summary(values):
        arr = np.array([[np.nan if v is None else v for v in run] for run in values], dtype=float)
        return [json_number(float(x)) if not np.isnan(x) else None for x in np.nanmean(arr, 0)], \
               [json_number(float(x)) if not np.isnan(x) else None for x in np.nanstd(arr, 0)]

    out_curves = {}
    for s in strategies:
        mean, std = summary(runs[s])
        out_curves[s] = {"labelled": labelled_counts, "mean": mean, "std": std, "runs": runs[s]}
    gain = [None if a is None or b is None else round(a - b, 4)
            for a, b in zip(out_curves["uncertainty"]["mean"], out_curves["random"]["mean"])]
    return {"dataset": dataset, "project_type": ptype, "metric": metric, "curves": out_curves,
            "uncertainty_minus_random": gain, "picked": picked,
            "settings": {"rounds": rounds, "per_round": per_round, "start_per_tag": start_per_tag,
                         "pool_size": pool_size, "empty_frames_in_pool": n_empty, "test_size": test_size,
                         "seeds": list(seeds),
                         "data_seed": data_seed, "image_size": image_size or meta.default_size,
                         "random_draws": random_draws,
                         "detection_epochs": detection_epochs, "training": "Quick (Regular)",
                         "order": "cvlab.active.suggestion_score (summed squared box probability), plain"
                         if ptype == "ObjectDetection" else
                         f"cvlab.active.prediction_uncertainty, spread_order DIVERSITY={DIVERSITY}"},
            "seconds": round(time.perf_counter() - started, 1)}

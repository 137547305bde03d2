"""The smart labeler (``query_suggested_images``, ``query_suggested_image_count``) and suggested tags and regions.

The smart labeler's order (``UncertaintyDescending``):

- Classification: uncertainty *spread out* (``spread_order``): each next image maximises
  ``uncertainty x distance ** DIVERSITY``, the distance being the cosine distance of its cached embedding
  (``cvlab.embeddings``) to the nearest training image or image already suggested. Plain top-uncertainty fills
  a batch of ten with near-copies of one confusing case; from a cold start it also piles onto whichever tag the
  young model confuses most.
- Object detection: how many objects the detector clearly sees (``suggestion_score``: summed squared box
  probability), most first, not spread. A detector learns from boxes; a frame with nobody in it teaches it
  nothing (without regions it is not even trained on), yet ``1 - top box`` ranks exactly those frames first,
  and the spread seeks them out too (they lie far from every training image). Squaring keeps a cluttered empty
  frame's many weak false positives from outranking one clear worker, which a plain sum did not.

What each choice gained and what did no better (information density, k-means / TypiClust, BADGE,
class-balanced picks) is measured in ``benchmarks/active_learning.md``.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence

from cvlab import rules
from cvlab.domains import get_domain
from cvlab.errors import CvlabError
from cvlab.model import Image
from cvlab.service import wire

from . import uncertainty
from .cache import _completed, iteration_predictions
from .pages import PAGE, decode_continuation, encode_continuation, max_count as max_count_
from .uncertainty import iteration_kind, prediction_uncertainty, rank_by_uncertainty, spread_order, suggestion_score

SORT_BY = ("UncertaintyAscending", "UncertaintyDescending")


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




def _smart_order(ws, project_id: str, iteration_id: str, hits: list[SuggestedTagAndRegion]) -> list:
    """The smart labeler's order.  Detection: ``suggestion_score``, most first.  Classification: ``spread_order``
    on the embeddings of the iteration's backbone (cached, so the training images of a Quick classification
    iteration cost nothing); known = tagged images not held out."""
    it = ws.get_iteration(project_id, iteration_id)
    if iteration_kind(ws, project_id, it) == "ObjectDetection":  # plain: spreading picks out empty frames
        return rank_by_uncertainty(hits, lambda s: suggestion_score(s.predictions, "ObjectDetection"))
    if len(hits) < 2 or uncertainty.DIVERSITY == 0:
        return rank_by_uncertainty(hits, lambda s: s.prediction_uncertainty)
    from cvlab import embeddings  # torch, only for classification's spread
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
    take = max_count_(max_count, "BadRequestInvalid")
    skip = decode_continuation(continuation)
    _, tag_ids, threshold, hits = _untagged_suggestions(ws, project_id, iteration_id, tag_ids, threshold, predictor)
    if sort_by == "UncertaintyDescending":
        ranked = _smart_order(ws, project_id, iteration_id, hits)
    else:
        ranked = rank_by_uncertainty(hits, lambda s: s.prediction_uncertainty, descending=False)
    state = {"tag_ids": tag_ids, "threshold": threshold, "session": session or str(uuid.uuid4()),
             "continuation": encode_continuation(skip + take) if len(ranked) > skip + take else None,
             "max_count": take, "sort_by": sort_by}
    return SuggestedImageQuery(wire.suggested_query_token(state), ranked[skip:skip + take])


def query_suggested_image_count(ws, project_id: str, iteration_id: str, tag_ids=None, threshold: float = 0.0,
                                predictor=None) -> dict[str, int]:
    """``{tag id: untagged images the iteration predicts that tag on with probability >= threshold}``
    (every tag of the project when ``tag_ids`` is None)."""
    p, tag_ids, threshold, hits = _untagged_suggestions(ws, project_id, iteration_id, tag_ids, threshold, predictor)
    tag_ids = tag_ids or [t.id for t in ws.get_tags(p.id)]
    return {t: sum(_matches(h.predictions, [t], threshold) for h in hits) for t in tag_ids}

"""How unsure a model is on one image, and the orders the smart labeler builds from it.

Uncertainty (``prediction_uncertainty``; 0 = sure, 1 = undecided; Azure's ``predictionUncertainty``):

- Multiclass classification: ``1 - (p1 - p2)``, one minus the *margin* between the two most probable tags
  (margin sampling: an image the model hesitates between two tags on is the one worth labelling).
- Multilabel classification: ``max_t (1 - |2 p_t - 1|)``, how close the most undecided tag's sigmoid is to 0.5
  (each tag is its own yes/no question; one open question is enough to need a human).
- Object detection: ``1 - top box probability`` (boxes below ``DETECTION_FLOOR`` are noise): an image where even
  the detector's best box is unsure holds objects it has not learnt yet; an image with no box above the floor
  scores 1.0 (the model sees nothing there, which is worth a look). A per-box ambiguity (``1 - |2 p - 1|``)
  averaged or maximised over boxes saturates near 1 on nearly every image of a young detector, whose many weak
  boxes hover around 0.5, so it cannot rank images.

The smart labeler's order (``suggestion_score``, ``spread_order``) is explained in ``cvlab.active.suggestions``;
the experiments that chose it are in ``benchmarks/active_learning.md``.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np

from cvlab import rules
from cvlab.domains import get_domain
from cvlab.errors import CvlabError
from cvlab.model import StoredPrediction

DETECTION_FLOOR = 0.05
DIVERSITY = 4.0      # spread_order's distance exponent (0 = plain uncertainty order); chosen on development data


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

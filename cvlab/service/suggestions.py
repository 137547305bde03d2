"""Smart-labeler suggestions: a trained iteration's predictions on untagged images, with an uncertainty.

Azure caches suggestions; so does cvlab, in memory per (iteration, image): an iteration's model never changes,
so a cached prediction stays right. Uncertainty here is ``1 - top probability`` (0 = sure); the active-learning
module may refine the ranking later.
"""
from __future__ import annotations

import threading

from cvlab.errors import CvlabError

_BATCH = 16


class SuggestionCache:
    def __init__(self):
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], list[dict]] = {}

    def predictions(self, ctx, iteration, images) -> dict[str, list[dict]]:
        """Predictions of ``iteration`` for each image record (computed once per image)."""
        if iteration.status != "Completed":
            raise CvlabError("BadRequestIterationIsNotTrained", f"{iteration.name} is {iteration.status}: "
                             "suggestions need a Completed iteration.")
        with self._lock:
            out = {im.id: self._items[(iteration.id, im.id)] for im in images if (iteration.id, im.id) in self._items}
        todo = [im for im in images if im.id not in out]
        if todo:
            predictor = ctx.predictor(iteration.id)
            for start in range(0, len(todo), _BATCH):
                chunk = todo[start:start + _BATCH]
                with ctx.inference:
                    found = predictor.predict_batch([ctx.ws.read_image_bytes(im) for im in chunk])
                with self._lock:
                    for im, preds in zip(chunk, found):
                        self._items[(iteration.id, im.id)] = preds
                        out[im.id] = preds
        return out


def uncertainty(predictions: list[dict]) -> float:
    return float(1.0 - max((p["probability"] for p in predictions), default=0.0))


def matches(predictions: list[dict], tag_ids: list[str] | None, threshold: float) -> bool:
    """Whether any prediction of one of ``tag_ids`` (all tags when None) reaches ``threshold``."""
    wanted = set(tag_ids) if tag_ids else None
    return any(p["probability"] >= threshold and (wanted is None or p["tag_id"] in wanted) for p in predictions)

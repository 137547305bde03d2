"""Requests-per-second limits per tier, as Azure's gateway enforces them (429 + Retry-After).

The numbers come from ``cvlab.rules``; this module only keeps the clocks. Count limits (projects, images, tags,
iterations, predictions per month) are rules of the core and raise ``CvlabError`` there.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from cvlab import rules

#: Operation classes as the limits page names them.
PREDICT_STORE, PREDICT_NOSTORE, TRAIN, OTHER = "prediction", "prediction_nostore", "train", "other"

_RULE_KEYS = {PREDICT_STORE: "tps_prediction_with_storage", PREDICT_NOSTORE: "tps_prediction_without_storage",
              TRAIN: "tps_train_project", OTHER: "tps_other"}
_OPERATION_NAMES = {PREDICT_STORE: "Prediction", PREDICT_NOSTORE: "PredictionNoStore",
                    TRAIN: "TrainProject", OTHER: "Training"}


def classify_request(api: str, method: str, path: str) -> str:
    """Which rate limit a request counts against (path is the part after ``.../training`` or ``.../prediction``)."""
    p = path.rstrip("/").lower()
    if api == "prediction":
        return PREDICT_NOSTORE if p.endswith("/nostore") else PREDICT_STORE
    if method == "POST" and p.endswith("/train"):
        return TRAIN
    return OTHER


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets (capacity = rate, refilled continuously), one per operation class.

    ``enabled`` can be switched off for local tutorials that deliberately loop fast; the tier is read from the
    workspace on every request, so ``ws.set_tier`` takes effect at once.
    """

    def __init__(self, ws, enabled: bool = True, clock=time.monotonic):
        self.ws = ws
        self.enabled = enabled
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def rate(self, tier: str, op: str) -> float:
        return float(rules.limit(_RULE_KEYS[op], tier))

    def acquire(self, op: str) -> int | None:
        """Take one token; return None if allowed, else the seconds to wait (for Retry-After)."""
        if not self.enabled:
            return None
        tier = self.ws.tier
        rate = self.rate(tier, op)
        now = self._clock()
        with self._lock:
            b = self._buckets.get((tier, op))
            if b is None:
                b = self._buckets[(tier, op)] = _Bucket(rate, now)
            b.tokens = min(rate, b.tokens + (now - b.stamp) * rate)
            b.stamp = now
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return None
            return max(1, math.ceil((1.0 - b.tokens) / rate))

    def message(self, op: str, api: str, retry_after: int) -> str:
        tier = self.ws.tier
        service = "Custom_Vision.Training" if api == "training" else "Custom_Vision.Prediction"
        return (f"Requests to the {_OPERATION_NAMES[op]} Operation under Custom_Vision_{api.capitalize()}_3.3 have "
                f"exceeded rate limit of your current {service} {tier} pricing tier "
                f"({self.rate(tier, op):g} per second). Please retry after {retry_after} second"
                f"{'s' if retry_after != 1 else ''}. To increase your rate limit switch to a paid tier.")


"""Training and prediction keys: made once per workspace, checked in constant time, never logged."""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from starlette.datastructures import Headers

from cvlab import config

TRAINING_HEADERS = ("training-key", "ocp-apim-subscription-key")
PREDICTION_HEADERS = ("prediction-key", "ocp-apim-subscription-key")
TRAINING_QUERY = ("Training-Key", "training-key", "subscription-key")
PREDICTION_QUERY = ("Prediction-Key", "prediction-key", "subscription-key")

_SETTING = {"training": "service.training_key", "prediction": "service.prediction_key"}
_RESOURCE_SETTING = "service.prediction_resource_id"


@dataclass(frozen=True)
class ServiceKeys:
    training_key: str
    prediction_key: str
    prediction_resource_id: str

    def __repr__(self) -> str:  # keys never end up in logs or tracebacks
        return f"ServiceKeys(training_key='***', prediction_key='***', " \
               f"prediction_resource_id={self.prediction_resource_id!r})"


def _key(ws, kind: str, given: str | None) -> str:
    """Explicit argument, then ``CVLAB_TRAINING_KEY`` / ``CVLAB_PREDICTION_KEY`` (``cvlab.config``), then the
    workspace's stored key (made on first use)."""
    settings = config.settings()
    key = given or (settings.training_key if kind == "training" else settings.prediction_key)
    if key:
        return key
    return ws.get_or_make_setting(_SETTING[kind], lambda: secrets.token_hex(16))  # 32 hex characters, like Azure's


def resolve_keys(ws, training_key: str | None = None, prediction_key: str | None = None) -> ServiceKeys:
    """The keys and the prediction resource id this workspace's endpoint accepts."""
    tk = _key(ws, "training", training_key)
    pk = _key(ws, "prediction", prediction_key)
    if hmac.compare_digest(tk.encode(), pk.encode()):
        raise ValueError("The training key and the prediction key must differ: a prediction key cannot train.")
    # The ARM id publish_iteration wants, shaped like Azure's so learners' code keeps working.
    rid = ws.get_or_make_setting(_RESOURCE_SETTING, lambda: (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/cvlab/providers/"
        f"Microsoft.CognitiveServices/accounts/cvlab-prediction-{secrets.token_hex(4)}"))
    return ServiceKeys(tk, pk, rid)


def presented_keys(headers: Headers, query: dict, kind: str) -> list[str]:
    """Every key the caller presented for this API, from headers (any case) or query parameters."""
    names = TRAINING_HEADERS if kind == "training" else PREDICTION_HEADERS
    found = [headers[n] for n in names if n in headers]
    qnames = TRAINING_QUERY if kind == "training" else PREDICTION_QUERY
    found += [query[n] for n in qnames if n in query]
    return found


def key_ok(presented: list[str], expected: str) -> bool:
    """Constant-time comparison against the expected key (any presented key may match)."""
    want = expected.encode()
    ok = False
    for p in presented:
        ok |= hmac.compare_digest(p.strip().encode(), want)
    return ok

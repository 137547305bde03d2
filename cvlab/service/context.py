"""What every route needs: the workspace, keys, rate limiter, predictors and signed blob URLs."""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading

from fastapi import Request

from .auth import ServiceKeys
from .quotas import RateLimiter

_BLOB_SECRET = "service.blob_secret"
VARIANTS = ("original", "resized", "thumbnail")
_URI_FIELDS = {"original": "originalImageUri", "resized": "resizedImageUri", "thumbnail": "thumbnailUri"}


class ServiceContext:
    def __init__(self, ws, keys: ServiceKeys, limiter: RateLimiter):
        self.ws = ws
        self.keys = keys
        self.limiter = limiter
        # Inference already uses both cores (ONNX intra-op threads); more concurrent runs only thrash the CPU
        # and grow memory, so requests queue here while decoding/storing still overlaps.
        self.inference = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) // 2))
        secret = ws.get_setting(_BLOB_SECRET)
        if not secret:
            secret = secrets.token_hex(16)
            ws.set_setting(_BLOB_SECRET, secret)
        self._secret = secret.encode()

    def predictor(self, iteration_id: str):
        """The iteration's Predictor (``Predictor.load`` caches it per process)."""
        from cvlab.predict import Predictor
        return Predictor.load(self.ws, iteration_id)

    # ---- blob URLs: signed like Azure's SAS URLs, so they open without a key header -------------------------
    def sign(self, kind: str, project_id: str, item_id: str) -> str:
        msg = f"{kind}/{project_id}/{item_id}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:32]

    def verify(self, kind: str, project_id: str, item_id: str, sig: str) -> bool:
        return hmac.compare_digest(self.sign(kind, project_id, item_id).encode(), (sig or "").encode())

    def uri_factory(self, request: Request, kind: str = "images"):
        base = str(request.base_url).rstrip("/")

        def uris(item) -> dict:
            pid = getattr(item, "project_id", None)
            sig = self.sign(kind, pid, item.id)
            return {field: f"{base}/blobs/{kind}/{pid}/{item.id}/{variant}?sig={sig}"
                    for variant, field in _URI_FIELDS.items()}
        return uris


def ctx_of(request: Request) -> ServiceContext:
    """The context of the caller: a workshop seat's own (set by the gateway from its key) or the endpoint's."""
    return request.scope.get("cvlab.ctx") or request.app.state.ctx

"""What every route needs: the workspace, keys, rate limiter, predictors and signed blob URLs."""
from __future__ import annotations

import collections
import hashlib
import hmac
import logging
import os
import secrets
import threading

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from . import wire
from .auth import ServiceKeys
from .quotas import RateLimiter

log = logging.getLogger("cvlab.service")

_BLOB_SECRET = "service.blob_secret"
VARIANTS = tuple(wire.IMAGE_URI_FIELDS)  # original, resized, thumbnail


class DeferredStores:
    """What a prediction writes, done just after its response has gone out, so a client never waits for the disk:
    the stored prediction (blob + row) and the month's prediction count (a write transaction); what that
    saves a client is in benchmarks/serve.md.

    ``put`` / ``count_prediction`` queue them before the response is sent; ``drain`` writes everything queued, in
    order, one writer at a time. The prediction route drains after its response (a background task), and
    ``settle_stores`` drains before every training-API and blob request, so a ``query_predictions`` sent after
    ``classify_image`` returned always sees it; ``queued_predictions`` keeps the quota check exact meanwhile. A
    store that fails (the project was deleted meanwhile, a full disk) is logged and dropped: the client already
    has its answer, as with Azure's own asynchronous storage."""

    def __init__(self, ws):
        self.ws = ws
        self._queue: collections.deque[dict] = collections.deque()
        self._writer = threading.Lock()
        self._count_lock = threading.Lock()
        self._counted = 0  # predictions answered whose usage is not in the database yet
        self._usage_failing = False

    def put(self, **store_kwargs) -> None:
        self._queue.append(store_kwargs)

    def count_prediction(self) -> None:
        with self._count_lock:
            self._counted += 1

    def queued_predictions(self) -> int:
        return self._counted

    def pending(self) -> bool:
        """Anything queued or being written (an item is popped only under the writer lock); a count that cannot
        be written for now (full disk) is retried at most by the requests that store something."""
        return bool(self._queue) or (self._counted > 0 and not self._usage_failing) or self._writer.locked()

    def drain(self) -> None:
        """Write what is queued. Never raises: a write refused (a full disk) must not fail the request that
        happens to drain, nor every later one; the month's count stays queued (still counted by the quota check)
        and is written by a later drain once there is room."""
        with self._writer:
            counted = self._counted
            if counted:
                try:
                    self.ws.add_usage("predictions", counted)
                except Exception as exc:  # noqa: BLE001 - kept queued, tried again by the next drain
                    if not self._usage_failing:
                        log.warning("The prediction count of %s could not be written (kept, tried again): %s",
                                    self.ws.path, exc)
                    self._usage_failing = True
                else:
                    self._usage_failing = False
                    with self._count_lock:  # still counted until written, so the quota check never misses them
                        self._counted -= counted
            while self._queue:
                item = self._queue.popleft()
                try:
                    self.ws.store_prediction(**item)
                except Exception as exc:  # noqa: BLE001 - the client has its answer; keep serving
                    log.warning("A stored prediction of project %s was dropped: %s", item.get("project_id"), exc)


class ServiceContext:
    def __init__(self, ws, keys: ServiceKeys, limiter: RateLimiter):
        self.ws = ws
        self.keys = keys
        self.limiter = limiter
        # Inference already uses both cores (ONNX intra-op threads); more concurrent runs only thrash the CPU
        # and grow memory, so requests queue here while decoding/storing still overlaps.
        self.inference = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) // 2))
        self.stores = DeferredStores(ws)
        self._secret = ws.get_or_make_setting(_BLOB_SECRET, lambda: secrets.token_hex(16)).encode()

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
                    for variant, field in wire.IMAGE_URI_FIELDS.items()}
        return uris


def ctx_of(request: Request) -> ServiceContext:
    """The context of the caller: a workshop seat's own (set by the gateway from its key) or the endpoint's."""
    return request.scope.get("cvlab.ctx") or request.app.state.ctx


#: What a route declares to get the caller's context: ``def get_projects(ctx: Ctx)``.
Ctx = Annotated[ServiceContext, Depends(ctx_of)]


async def settle_stores(request: Request) -> None:
    """Router dependency: the caller's answered predictions are stored before its request runs (read your writes)."""
    stores = ctx_of(request).stores
    if stores.pending():
        await run_in_threadpool(stores.drain)

"""The FastAPI app: Azure's gateway behaviour (versions, keys, rate limits) in front of two routers."""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from starlette.datastructures import Headers

from .auth import ServiceKeys, key_ok, presented_keys, resolve_keys
from .bodies import BodyTooLarge, body_limit, declared_length, limit_receive, too_large
from .context import ServiceContext
from .errors import ACCESS_DENIED_BODY, JSON_TYPE, error_response, install_error_handlers
from .quotas import RateLimiter, classify_request

TRAINING_PREFIX = "/customvision/v3.4-preview/training"
PREDICTION_PREFIX = "/customvision/v3.1/prediction"
_CANONICAL = {"training": TRAINING_PREFIX, "prediction": PREDICTION_PREFIX}
VERSIONS = {"training": ("v3.0", "v3.1", "v3.2", "v3.3", "v3.4-preview"), "prediction": ("v3.0", "v3.1")}
_ROUTE = re.compile(r"^/customvision/([^/]+)/(training|prediction)(/.*)?$", re.IGNORECASE)


async def _send_json(send, status: int, body: dict, headers: list | None = None) -> None:
    payload = json.dumps(body).encode()
    hdrs = [(b"content-type", JSON_TYPE.encode()), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": hdrs + (headers or [])})
    await send({"type": "http.response.body", "body": payload})


async def _capped(app, scope, receive, send, api: str | None, rest: str) -> None:
    """Run ``app`` with the route's body cap (``bodies.body_limit``): a Content-Length over it is answered 413
    before a byte of the body is read, and a chunked body fails the moment it passes the cap."""
    cap, code, what = body_limit(api, rest)
    size = declared_length(Headers(scope=scope))
    if size is not None and size > cap:
        err = too_large(size, cap, code, what)
        return await _send_json(send, err.status_code, {"code": err.code, "message": err.message},
                                [(b"connection", b"close")])
    return await app(scope, limit_receive(receive, cap, code, what), send)


async def _body_too_large(request: Request, exc: BodyTooLarge):
    return error_response(exc.code, exc.message, exc.status_code, headers=exc.headers)


class Gateway:
    """ASGI middleware playing Azure API Management: it maps every accepted API version (and the segment in any
    case) onto one canonical route set, checks the key of the API called, applies the tier's rate limits and
    the route's body cap, before the app routes the request."""

    def __init__(self, app, ctx: ServiceContext):
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        m = _ROUTE.match(scope["path"])
        if not m:
            return await _capped(self.app, scope, receive, send, None, scope["path"])
        version, api, rest = m.group(1).lower(), m.group(2).lower(), m.group(3) or ""
        if version not in VERSIONS[api]:
            return await _send_json(send, 404, {"code": "NotFound", "message": (
                f"API version {m.group(1)} of the {api} API is not served here. Use one of "
                f"{', '.join(VERSIONS[api])} (SDK 3.1.1 calls training v3.4-preview and prediction v3.1).")})
        scope = dict(scope)
        scope["path"] = _CANONICAL[api] + rest
        scope["raw_path"] = scope["path"].encode()
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        expected = self.ctx.keys.training_key if api == "training" else self.ctx.keys.prediction_key
        presented = presented_keys(Headers(scope=scope), query, api)
        if not key_ok(presented, expected):
            seats = getattr(self.ctx, "seats", None)  # workshop mode (cvlab.service.workshop): a learner's key
            if seats is None or not seats.admit(scope, api, presented):
                return await _send_json(send, 401, ACCESS_DENIED_BODY)
        limiter = scope.get("cvlab.ctx", self.ctx).limiter
        op = classify_request(api, scope["method"], rest)
        wait = limiter.acquire(op)
        if wait is not None:
            msg = limiter.message(op, api, wait)
            return await _send_json(send, 429, {"error": {"code": "429", "message": msg}},
                                    [(b"retry-after", str(wait).encode())])
        return await _capped(self.app, scope, receive, send, api, rest)


def create_app(ws, *, training_key: str | None = None, prediction_key: str | None = None,
               tier: str | None = None, rate_limits: bool = True, workshop: bool | None = None) -> FastAPI:
    """The local Custom Vision endpoint for workspace ``ws`` (keys: argument, env var, or the workspace's own).

    ``workshop`` (default: when the workspace has workshop seats) also serves every seat's keys, each on its own
    isolated seat workspace, plus the ``/cvlab/workshop`` routes (``cvlab.service.workshop``)."""
    from .blobs import router as blob_router
    from .prediction_api import fast_routes, router as prediction_router
    from .routes import router as training_router

    if tier is not None:
        ws.set_tier(tier)
    from cvlab.export import recover_interrupted
    recover_interrupted(ws)  # a killed server's trainings/exports end Failed with a reason, not Training forever
    keys: ServiceKeys = resolve_keys(ws, training_key, prediction_key)
    if workshop is None:
        from cvlab.workshop import is_workshop
        workshop = is_workshop(ws)
    ctx = ServiceContext(ws, keys, RateLimiter(ws, enabled=rate_limits))
    app = FastAPI(
        title="cvlab — local Custom Vision endpoint",
        version="3.4-preview",
        description=("Azure Custom Vision's Training (v3.0-v3.4-preview) and Prediction (v3.0-v3.1) REST APIs, "
                     "served from a local cvlab workspace. Every route also answers under the other API "
                     "versions; send `Training-Key` or `Prediction-Key` (or `Ocp-Apim-Subscription-Key`)."),
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    app.add_exception_handler(BodyTooLarge, _body_too_large)
    # The prediction routes first: Starlette tries routes in order, and the hot path should not test ~60 others.
    app.router.routes.extend(fast_routes(PREDICTION_PREFIX))
    app.include_router(prediction_router, prefix=PREDICTION_PREFIX)
    app.include_router(training_router, prefix=TRAINING_PREFIX)
    app.include_router(blob_router)
    app.add_middleware(Gateway, ctx=ctx)
    if workshop:
        from .workshop import install
        install(app, ctx)
    from cvlab.portal import mount  # the portal at / for browsers (the JSON summary below for other clients)
    mount(app)

    @app.get("/", include_in_schema=False)
    def root(request: Request):
        """What a browser pointed at the endpoint sees: where things are (never the keys)."""
        base = str(request.base_url).rstrip("/")
        return {"service": "cvlab local Custom Vision endpoint", "tier": ws.tier, "docs": f"{base}/docs",
                "training": f"{base}{TRAINING_PREFIX}", "prediction": f"{base}{PREDICTION_PREFIX}",
                "keys": "printed by `cvlab serve` (or handle.training_key / handle.prediction_key)"}
    return app

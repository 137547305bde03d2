"""Azure-shaped JSON errors for every failure the service can produce.

The SDK crashes on an empty error body (``CustomVisionError`` needs ``code`` and ``message``), so every error,
including FastAPI's own validation errors and unknown routes, leaves here as ``{"code", "message"}`` JSON. Like
Azure's single error, the message is bounded (``MAX_MESSAGE_CHARS``) whatever the request held: a body of a
million bad values answers with its first problem and a count, not with a million messages. An unexpected
exception answers a JSON 500 on a connection that stays open (``RequestBoundary``), and a query string that is not
valid UTF-8 is refused with a 400 before any route runs.
"""
from __future__ import annotations

import json
import logging
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cvlab import rules
from cvlab.errors import CvlabError

from .bodies import BodyRefused

log = logging.getLogger("cvlab.service")

JSON_TYPE = "application/json; charset=utf-8"
MAX_MESSAGE_CHARS = 2000  # Azure answers one short error; no message grows with the request
_FIELD_CHARS = 200

#: The body Azure API Management sends for a missing or wrong key (reference §4.3). With the reason phrase
#: ``Access Denied`` the SDK prints "Operation returned an invalid status code 'Access Denied'", as on Azure.
ACCESS_DENIED_BODY = {"error": {"code": "401", "message": (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for "
    "an active subscription and use a correct regional API endpoint for your resource.")}}


def bounded(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, and never anything JSON or UTF-8 cannot carry (a lone surrogate from
    the request shows as its escape), so writing the error can never fail."""
    text = str(text)
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return text if rules.unicode_problem(text) is None else text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(code: str, message: str, status: int, headers: dict | None = None) -> JSONResponse:
    """How a route error leaves the service (the Gateway answers 401/429/unknown versions itself); a 429 has API
    Management's shape, as the Gateway's own."""
    body = {"code": bounded(code, 100), "message": bounded(message)}
    if status == 429:
        body = {"error": body}
    return JSONResponse(body, status_code=status, headers=headers, media_type=JSON_TYPE)


def _field(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return bounded(".".join(parts) or "request", _FIELD_CHARS)


async def _cvlab_error(request: Request, exc: CvlabError) -> JSONResponse:
    retry = getattr(exc, "retry_after", None)
    return error_response(exc.code, exc.message, exc.status,
                          headers={"Retry-After": str(retry)} if retry is not None else None)


async def _body_refused(request: Request, exc: BodyRefused) -> JSONResponse:
    return error_response(exc.code, exc.message, exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 becomes Azure's 400: one message naming the first bad parameter (and how many more there are),
    however many the request held."""
    errors = exc.errors()
    if not errors:
        return error_response("BadRequestInvalid", "Invalid request.", 400)
    first = errors[0]
    where = first.get("loc", ())
    kind = where[0] if where else "request"
    message = f"Invalid request: {kind} parameter '{_field(where)}': {bounded(first.get('msg', 'invalid'), _FIELD_CHARS)}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1:,} more problem{'s' if len(errors) > 2 else ''})"
    missing = all(e.get("type") == "missing" for e in errors)
    return error_response("BadRequestRequiredParamIsNull" if missing else "BadRequestInvalid", message + ".", 400)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 404:
        return error_response("NotFound", f"No such operation: {request.method} {request.url.path}. "
                              "Check the endpoint and the API version (training v3.0-v3.4-preview, "
                              "prediction v3.0-v3.1).", 404)
    if exc.status_code == 405:
        return error_response("BadRequestNotSupported",
                              f"{request.method} is not supported on {request.url.path}.", 405)
    detail = bounded(exc.detail if isinstance(exc.detail, str) else str(exc.detail))
    code = {400: "BadRequest", 401: "Forbidden", 403: "Forbidden", 409: "Conflict",
            413: "BadRequestImageSizeBytes", 415: "UnsupportedMediaType"}.get(exc.status_code, "ErrorUnknown")
    return error_response(code, detail or "Request failed.", exc.status_code)


def _unexpected_body(exc: Exception) -> dict:
    return {"code": "ErrorUnknown", "message": bounded(
        f"Internal error ({type(exc).__name__}: {exc}). Nothing stored was changed by the failed step; please "
        "report this with the request you sent.")}


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    body = _unexpected_body(exc)
    return error_response(body["code"], body["message"], 500)


def query_problem(query_string: bytes) -> str | None:
    """Why a raw query string does not decode to valid Unicode (Starlette would silently turn it into U+FFFD)."""
    for pair in query_string.split(b"&"):
        try:
            text = unquote_to_bytes(pair.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError as e:
            name = pair.split(b"=", 1)[0][:60].decode("latin-1")
            return f"the query parameter {name!r} is not UTF-8 ({e.reason} at byte {e.start})"
        problem = rules.unicode_problem(text)
        if problem:
            return problem
    return None


async def _send_json(send, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", JSON_TYPE.encode()), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class RequestBoundary:
    """ASGI middleware inside the gateway: a query string that is not valid UTF-8 answers 400 before any route
    runs, and an exception no handler took answers Azure's JSON 500 itself instead of letting it reach the
    server, which would close the connection (every later request on that keep-alive connection would fail)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        problem = query_problem(scope.get("query_string", b""))
        if problem:
            return await _send_json(send, 400, {"code": "BadRequestInvalid", "message": bounded(
                f"The request's query string is not valid Unicode: {problem}. Percent-encode UTF-8 text.")})
        started = False

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:  # noqa: BLE001 - the last line of defence; logged with its traceback
            if started:
                raise  # half a response is out: only closing the connection can tell the client
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            await _send_json(send, 500, _unexpected_body(exc))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CvlabError, _cvlab_error)
    app.add_exception_handler(BodyRefused, _body_refused)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(RequestBoundary)

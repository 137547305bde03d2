"""Azure-shaped JSON errors for every failure the service can produce.

The SDK crashes on an empty error body (``CustomVisionError`` needs ``code`` and ``message``), so every error,
including FastAPI's own validation errors and unknown routes, leaves here as ``{"code", "message"}`` JSON.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cvlab.errors import CvlabError

log = logging.getLogger("cvlab.service")

JSON_TYPE = "application/json; charset=utf-8"

#: The body Azure API Management sends for a missing or wrong key (reference §4.3). With the reason phrase
#: ``Access Denied`` the SDK prints "Operation returned an invalid status code 'Access Denied'", as on Azure.
ACCESS_DENIED_BODY = {"error": {"code": "401", "message": (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for "
    "an active subscription and use a correct regional API endpoint for your resource.")}}


def error_response(code: str, message: str, status: int, headers: dict | None = None) -> JSONResponse:
    """How a route error leaves the service (the Gateway answers 401/429/unknown versions itself)."""
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers,
                        media_type=JSON_TYPE)


def _field(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "request"


async def _cvlab_error(request: Request, exc: CvlabError) -> JSONResponse:
    return error_response(exc.code, exc.message, exc.status)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 becomes Azure's 400 with a message naming each bad parameter."""
    problems = []
    for err in exc.errors():
        where = err.get("loc", ())
        kind = where[0] if where else "request"
        msg = err.get("msg", "invalid")
        problems.append(f"{kind} parameter '{_field(where)}': {msg}")
    missing = all(e.get("type") == "missing" for e in exc.errors())
    code = "BadRequestRequiredParamIsNull" if missing and exc.errors() else "BadRequestInvalid"
    return error_response(code, "Invalid request: " + "; ".join(problems) + ".", 400)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 404:
        return error_response("NotFound", f"No such operation: {request.method} {request.url.path}. "
                              "Check the endpoint and the API version (training v3.0-v3.4-preview, "
                              "prediction v3.0-v3.1).", 404)
    if exc.status_code == 405:
        return error_response("BadRequestNotSupported",
                              f"{request.method} is not supported on {request.url.path}.", 405)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    code = {400: "BadRequest", 401: "Forbidden", 403: "Forbidden", 409: "Conflict",
            413: "BadRequestImageSizeBytes", 415: "UnsupportedMediaType"}.get(exc.status_code, "ErrorUnknown")
    return error_response(code, detail or "Request failed.", exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response("ErrorUnknown", f"Internal error ({type(exc).__name__}: {exc}). Nothing stored was "
                          "changed by the failed step; please report this with the request you sent.", 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CvlabError, _cvlab_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

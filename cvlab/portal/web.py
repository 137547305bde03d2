"""The portal's pages and static files, served with a Content-Security-Policy that forbids inline and foreign
scripts: every script is a file under ``static/`` of this origin, so a name a learner typed can never run."""
from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

STATIC = Path(__file__).parent / "static"
PREFIX = "/portal"

CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self'",          # no 'unsafe-inline', no 'unsafe-eval', no other origin
    "style-src 'self'",
    "img-src 'self' blob:",       # blob: previews of local files before upload and in Quick Test
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",  # revalidated with the ETag, so an updated cvlab never runs stale scripts
}
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
          ".txt": "text/plain; charset=utf-8", ".md": "text/plain; charset=utf-8"}


def _file_response(request: Request, path: Path) -> Response:
    stat = path.stat()
    etag = '"' + hashlib.sha1(f"{stat.st_mtime_ns}-{stat.st_size}".encode()).hexdigest()[:16] + '"'
    headers = dict(SECURITY_HEADERS, ETag=etag)
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(path.read_bytes(), media_type=_TYPES.get(path.suffix, "application/octet-stream"),
                    headers=headers)


def _not_found(what: str) -> Response:
    from cvlab.service.errors import error_response
    return error_response("NotFound", f"The portal has no file {what!r}.", 404)


async def static_file(request: Request) -> Response:
    relative = request.path_params["path"]
    target = (STATIC / relative).resolve()
    if STATIC.resolve() not in target.parents or not target.is_file():
        return _not_found(relative)
    return _file_response(request, target)


async def index(request: Request) -> Response:
    return _file_response(request, STATIC / "index.html")


class BrowserRoute(Route):
    """``/`` for a browser (it asks for text/html); any other client still gets the service's JSON summary."""

    def matches(self, scope):
        match, child = super().matches(scope)
        if match is Match.FULL:
            accept = dict(scope.get("headers") or []).get(b"accept", b"")
            if b"text/html" not in accept:
                return Match.NONE, {}
        return match, child


def install(app) -> None:
    from .router import router
    app.router.routes.insert(0, BrowserRoute("/", index, methods=["GET"], include_in_schema=False))
    app.router.routes.insert(1, Route(PREFIX + "/{path:path}", static_file, methods=["GET"],
                                      include_in_schema=False))
    app.include_router(router)

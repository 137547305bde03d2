"""What the route modules share: id lists in query strings, batch checks, 204s and upload summaries."""
from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from cvlab import rules
from cvlab.errors import CvlabError

from .. import wire
from ..context import ServiceContext

TAKE_DEFAULT = 50


def csv_ids(value: str | None, what: str = "tagIds", cap: int | None = None) -> list[str] | None:
    """A comma-separated id list of a query string, each a GUID, at most ``cap`` of them (None when absent)."""
    if value is None or value == "":
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if cap is not None and len(items) > cap:
        raise CvlabError("BadRequestInvalidIds", f"{what} has {len(items)} ids: pass at most {cap} per call.")
    return [rules.check_guid(v, what[:-1] if what.endswith("s") else what) for v in items]


def summary_response(summary, request: Request, ctx: ServiceContext) -> JSONResponse:
    """An ImageCreateSummary: 200 when every image went in, 207 (multi-status) otherwise, as Azure answers."""
    body = wire.create_summary(summary, ctx.uri_factory(request))
    return JSONResponse(body, status_code=200 if summary.is_batch_successful else 207)


def no_content() -> Response:
    return Response(status_code=204)


def check_take_skip(take: int, skip: int) -> None:
    rules.check_limit("take", "S0", take, 0, "images per page (take)")
    if take < 0 or skip < 0:
        raise CvlabError("BadRequestInvalid", "take and skip must be zero or positive.")


def regions_of(regions) -> list[dict]:
    """The wire's Region models as the core's region dicts."""
    return [{"tag_id": r.tag_id, "left": r.left, "top": r.top, "width": r.width, "height": r.height}
            for r in (regions or [])]


def check_batch(n: int) -> None:
    """Batch-size check before work the core cannot see (fetching URLs, reading stored predictions)."""
    if n == 0:
        raise CvlabError("BadRequestImageBatch", "The batch has no images: add at least one entry to 'images'.")
    rules.check_limit("images_per_batch", "S0", n, 0, "images per batch")

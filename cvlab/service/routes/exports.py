"""Exports of an iteration: start one, list them with fresh signed download links."""
from __future__ import annotations

from fastapi import APIRouter, Query, Request

from cvlab import export as cvexport

from .. import wire
from ..blobs import export_link
from ..context import Ctx, ServiceContext

router = APIRouter()


@router.post("/projects/{projectId}/iterations/{iterationId}/export", tags=["export"], summary="export_iteration")
def export_iteration(request: Request, ctx: Ctx, projectId: str, iterationId: str, platform: str = Query(...),
                     flavor: str | None = None):
    e = cvexport.export_iteration(ctx.ws, projectId, iterationId, platform, flavor, background=True)
    return wire.export(e, _download_link(request, ctx))


@router.get("/projects/{projectId}/iterations/{iterationId}/export", tags=["export"], summary="get_exports")
def get_exports(request: Request, ctx: Ctx, projectId: str, iterationId: str):
    """Every call signs fresh download links (they expire, like Azure's SAS URLs)."""
    link = _download_link(request, ctx)
    return [wire.export(e, link) for e in cvexport.get_exports(ctx.ws, projectId, iterationId)]


def _download_link(request: Request, ctx: ServiceContext):
    base = str(request.base_url)
    return lambda relative: export_link(ctx, base, relative)

"""Regions (boxes) on images: create and delete."""
from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from cvlab import rules

from .. import wire
from ..context import Ctx
from ..schemas import ImageRegionCreateBatch
from .common import csv_ids, no_content

router = APIRouter()


@router.post("/projects/{projectId}/images/regions", tags=["images"], summary="create_image_regions")
def create_image_regions(ctx: Ctx, projectId: str, batch: ImageRegionCreateBatch):
    rules.check_limit("regions_per_batch", "S0", len(batch.regions), 0)
    regions = [{"image_id": r.image_id, "tag_id": r.tag_id, "left": r.left, "top": r.top, "width": r.width,
                "height": r.height} for r in batch.regions]
    res = ctx.ws.create_image_regions(projectId, regions)
    status = 200 if not (res.get("duplicated") or res.get("exceeded")) else 207
    return JSONResponse(wire.image_region_create_summary(res), status_code=status)


@router.delete("/projects/{projectId}/images/regions", tags=["images"], status_code=204,
               summary="delete_image_regions")
def delete_image_regions(ctx: Ctx, projectId: str, regionIds: str = Query(...)):
    ctx.ws.delete_image_regions(projectId, csv_ids(regionIds, "regionIds", cap=rules.limit("ids_per_delete")))
    return no_content()

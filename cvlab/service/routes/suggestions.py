"""The smart labeler (``cvlab.active``): suggested tags and regions, suggested images, region proposals."""
from __future__ import annotations

from fastapi import APIRouter, Query, Request

from cvlab import active, rules

from .. import wire
from ..context import Ctx
from ..schemas import SuggestedTagAndRegionQueryToken, TagFilter
from .common import csv_ids

router = APIRouter()


@router.post("/projects/{projectId}/tagsandregions/suggestions", tags=["suggestions"],
             summary="suggest_tags_and_regions")
def suggest_tags_and_regions(ctx: Ctx, projectId: str, iterationId: str = Query(...),
                             imageIds: str = Query(...)):
    ids = csv_ids(imageIds, "imageIds", cap=rules.limit("images_per_batch")) or []
    return [wire.suggested_tag_and_region(s)
            for s in active.suggest_tags_and_regions(ctx.ws, projectId, iterationId, ids)]


@router.post("/projects/{projectId}/images/suggested", tags=["suggestions"], summary="query_suggested_images")
def query_suggested_images(request: Request, ctx: Ctx, projectId: str, query: SuggestedTagAndRegionQueryToken,
                           iterationId: str = Query(...)):
    res = active.query_suggested_images(ctx.ws, projectId, iterationId, tag_ids=query.tag_ids,
                                        threshold=query.threshold or 0.0,
                                        sort_by=query.sort_by or "UncertaintyDescending",
                                        max_count=query.max_count, continuation=query.continuation,
                                        session=query.session)
    domain_id = ctx.ws.get_iteration(projectId, iterationId).domain_id
    uris = ctx.uri_factory(request)
    return {"token": res.token, "results": [wire.suggested_tag_and_region(s, uris, domain_id) for s in res.results]}


@router.post("/projects/{projectId}/images/suggested/count", tags=["suggestions"],
             summary="query_suggested_image_count")
def query_suggested_image_count(ctx: Ctx, projectId: str, body: TagFilter, iterationId: str = Query(...)):
    return active.query_suggested_image_count(ctx.ws, projectId, iterationId, tag_ids=body.tag_ids,
                                              threshold=body.threshold or 0.0)


@router.post("/projects/{projectId}/images/{imageId}/regionproposals", tags=["suggestions"],
             summary="get_image_region_proposals")
def get_image_region_proposals(ctx: Ctx, projectId: str, imageId: str):
    ws = ctx.ws
    project = ws.get_project(projectId)
    img = ws.get_image(projectId, imageId)
    predictions = []
    latest = ws.latest_iteration(projectId) if project.project_type == "ObjectDetection" else None
    if latest is not None:
        predictions = ctx.predictor(latest.id).predict(ws.open_image(img))
    return wire.region_proposals(projectId, img.id, predictions)

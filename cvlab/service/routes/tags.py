"""Tags, and tagging images with them (``images/tags``)."""
from __future__ import annotations

from fastapi import APIRouter, Query

from cvlab import rules

from .. import wire
from ..context import Ctx
from ..schemas import ImageTagCreateBatch, TagUpdate
from .common import csv_ids, no_content

router = APIRouter()


@router.get("/projects/{projectId}/tags", tags=["tags"], summary="get_tags")
def get_tags(ctx: Ctx, projectId: str, iterationId: str | None = None):
    ws = ctx.ws
    if iterationId:
        ws.get_iteration(projectId, iterationId)
    return [wire.tag(t) for t in ws.get_tags(projectId)]


@router.post("/projects/{projectId}/tags", tags=["tags"], summary="create_tag")
def create_tag(ctx: Ctx, projectId: str, name: str = Query(...), description: str | None = None,
               type: str | None = None):
    t = ctx.ws.create_tag(projectId, name, description or "", type or "Regular")
    return wire.tag(t)


@router.get("/projects/{projectId}/tags/{tagId}", tags=["tags"], summary="get_tag")
def get_tag(ctx: Ctx, projectId: str, tagId: str, iterationId: str | None = None):
    return wire.tag(ctx.ws.get_tag(projectId, tagId))


@router.patch("/projects/{projectId}/tags/{tagId}", tags=["tags"], summary="update_tag")
def update_tag(ctx: Ctx, projectId: str, tagId: str, body: TagUpdate):
    kwargs = {k: v for k, v in (("name", body.name), ("description", body.description), ("type", body.type))
              if v is not None}
    return wire.tag(ctx.ws.update_tag(projectId, tagId, **kwargs))


@router.delete("/projects/{projectId}/tags/{tagId}", tags=["tags"], status_code=204, summary="delete_tag")
def delete_tag(ctx: Ctx, projectId: str, tagId: str):
    ctx.ws.delete_tag(projectId, tagId)
    return no_content()


@router.post("/projects/{projectId}/images/tags", tags=["images"], summary="create_image_tags")
def create_image_tags(ctx: Ctx, projectId: str, batch: ImageTagCreateBatch):
    pairs = [(t.image_id, t.tag_id) for t in batch.tags]
    return wire.image_tag_create_summary(ctx.ws.create_image_tags(projectId, pairs))


@router.delete("/projects/{projectId}/images/tags", tags=["images"], status_code=204, summary="delete_image_tags")
def delete_image_tags(ctx: Ctx, projectId: str, imageIds: str = Query(...), tagIds: str = Query(...)):
    ctx.ws.delete_image_tags(projectId, csv_ids(imageIds, "imageIds", cap=rules.limit("ids_per_delete")),
                             csv_ids(tagIds, cap=rules.limit("tags_per_batch")))
    return no_content()

"""Images: uploads (bytes, base64 files, URLs, stored predictions), listing, counts, delete, metadata."""
from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from cvlab import active, rules
from cvlab.errors import CvlabError
from cvlab.images import batch_status
from cvlab.model import ImageCreateResult, ImageCreateSummary, ImageEntry

from .. import wire
from ..bodies import ImageTooLarge, image_payloads, json_body
from ..context import Ctx, ServiceContext
from ..fetch import fetch_images, seat
from ..schemas import ImageFileCreateBatch, ImageIdCreateBatch, ImageUrlCreateBatch
from .common import TAKE_DEFAULT, check_batch, csv_ids, regions_of, summary_response

router = APIRouter()


def _entries_from_bytes(payloads, tag_ids):
    return [ImageEntry(data=data, name=name, tag_ids=tuple(tag_ids or ())) for name, data in payloads]


@router.post("/projects/{projectId}/images", tags=["images"], summary="create_images_from_data",
             responses={207: {"description": "some images failed; see per-image status"}})
async def create_images_from_data(request: Request, ctx: Ctx, projectId: str, tagIds: str | None = None):
    tags = csv_ids(tagIds, cap=rules.limit("tags_per_batch"))
    ws = ctx.ws
    try:
        payloads = await image_payloads(request, "training")
    except ImageTooLarge as exc:  # one raw image over 6 MB, refused unread: Azure's per-image ErrorImageSize
        return await run_in_threadpool(_oversized_upload, request, ctx, projectId, exc)
    summary = await run_in_threadpool(ws.create_images, projectId, _entries_from_bytes(payloads, None), tags)
    return summary_response(summary, request, ctx)


def _oversized_upload(request: Request, ctx: ServiceContext, project_id: str, exc: ImageTooLarge) -> JSONResponse:
    ctx.ws.get_project(project_id)  # NotFoundProject first, as for any upload
    err = CvlabError(exc.code, exc.message)
    response = summary_response(ImageCreateSummary(False, [ImageCreateResult(None, batch_status(err), None,
                                                                               err.message)]), request, ctx)
    response.headers.update(exc.headers)  # the rest of the body is never read
    return response


def _b64(contents: str, name: str | None) -> bytes:
    try:
        return base64.b64decode(contents, validate=True)
    except (binascii.Error, ValueError):
        return b""  # the workspace reports it per image as ErrorSource / BadRequestImageStream


@router.post("/projects/{projectId}/images/files", tags=["images"], summary="create_images_from_files")
def create_images_from_files(request: Request, ctx: Ctx, projectId: str, batch: ImageFileCreateBatch):
    entries = [ImageEntry(data=_b64(e.contents, e.name), name=e.name, tag_ids=tuple(e.tag_ids or ()),
                          regions=tuple(regions_of(e.regions)), source_url=f'"{e.name}"' if e.name else None)
               for e in batch.images]
    summary = ctx.ws.create_images(projectId, entries, batch.tag_ids, batch.metadata)
    return summary_response(summary, request, ctx)


@router.post("/projects/{projectId}/images/urls", tags=["images"], summary="create_images_from_urls")
def create_images_from_urls(request: Request, ctx: Ctx, projectId: str, batch: ImageUrlCreateBatch):
    check_batch(len(batch.images))
    fetched = fetch_images([e.url for e in batch.images], rules.limit("max_image_bytes_training"),
                           seat(ctx, "training"))
    entries = []
    for e, data in zip(batch.images, fetched):
        if isinstance(data, CvlabError):
            data = b""  # reported per image (ErrorSource) by the workspace, as Azure does
        entries.append(ImageEntry(data=data, name=e.url.rsplit("/", 1)[-1] or None, tag_ids=tuple(e.tag_ids or ()),
                                  regions=tuple(regions_of(e.regions)), source_url=e.url))
    summary = ctx.ws.create_images(projectId, entries, batch.tag_ids, batch.metadata)
    return summary_response(summary, request, ctx)


@router.post("/projects/{projectId}/images/predictions", tags=["images"], summary="create_images_from_predictions")
def create_images_from_predictions(request: Request, ctx: Ctx, projectId: str, batch: ImageIdCreateBatch):
    check_batch(len(batch.images))
    items = [{"id": e.id, "tag_ids": e.tag_ids or [], "regions": regions_of(e.regions)} for e in batch.images]
    summary = active.add_predictions_to_training(ctx.ws, projectId, items, tag_ids=batch.tag_ids,
                                                 metadata=batch.metadata)
    return summary_response(summary, request, ctx)


def _list(request, ctx, projectId, *, tagging_status="All", tagIds=None, image_ids=None, orderBy=None,
          take=TAKE_DEFAULT, skip=0, iterationId=None, filter=None):
    ws = ctx.ws
    if iterationId:
        ws.get_iteration(projectId, iterationId)
    imgs = ws.get_images(projectId, tagging_status=tagging_status or "All",
                         tag_ids=csv_ids(tagIds, cap=rules.limit("tags_per_batch")), image_ids=image_ids,
                         order_by=orderBy or "Newest", take=take, skip=skip, filter=filter)
    uris = ctx.uri_factory(request)
    return [wire.image(i, uris) for i in imgs]


@router.get("/projects/{projectId}/images", tags=["images"], summary="get_images")
def get_images(request: Request, ctx: Ctx, projectId: str, iterationId: str | None = None, tagIds: str | None = None,
               taggingStatus: str | None = None, orderBy: str | None = None, take: int = TAKE_DEFAULT,
               skip: int = 0, filter: str | None = Query(None, alias="$filter")):
    return _list(request, ctx, projectId, tagging_status=taggingStatus, tagIds=tagIds, orderBy=orderBy, take=take,
                 skip=skip, iterationId=iterationId, filter=filter)


@router.get("/projects/{projectId}/images/tagged", tags=["images"], summary="get_tagged_images")
def get_tagged_images(request: Request, ctx: Ctx, projectId: str, iterationId: str | None = None, tagIds: str | None = None,
                      orderBy: str | None = None, take: int = TAKE_DEFAULT, skip: int = 0):
    return _list(request, ctx, projectId, tagging_status="Tagged", tagIds=tagIds, orderBy=orderBy, take=take, skip=skip,
                 iterationId=iterationId)


@router.get("/projects/{projectId}/images/untagged", tags=["images"], summary="get_untagged_images")
def get_untagged_images(request: Request, ctx: Ctx, projectId: str, iterationId: str | None = None,
                        orderBy: str | None = None, take: int = TAKE_DEFAULT, skip: int = 0):
    return _list(request, ctx, projectId, tagging_status="Untagged", orderBy=orderBy, take=take, skip=skip,
                 iterationId=iterationId)


@router.get("/projects/{projectId}/images/id", tags=["images"], summary="get_images_by_ids")
def get_images_by_ids(request: Request, ctx: Ctx, projectId: str, imageIds: str | None = None,
                      iterationId: str | None = None):
    ids = csv_ids(imageIds, "imageIds", cap=rules.limit("ids_per_request")) or []
    ws = ctx.ws
    uris = ctx.uri_factory(request)
    return [wire.image(ws.get_image(projectId, i), uris) for i in ids]


def _count(ctx, projectId, tagging_status, tagIds=None, iterationId=None, filter=None) -> int:
    ws = ctx.ws
    if iterationId:
        ws.get_iteration(projectId, iterationId)
    return ws.get_image_count(projectId, tagging_status=tagging_status or "All",
                              tag_ids=csv_ids(tagIds, cap=rules.limit("tags_per_batch")), filter=filter)


@router.get("/projects/{projectId}/images/count", tags=["images"], summary="get_image_count")
def get_image_count(ctx: Ctx, projectId: str, iterationId: str | None = None,
                    taggingStatus: str | None = None, tagIds: str | None = None,
                    filter: str | None = Query(None, alias="$filter")):
    return _count(ctx, projectId, taggingStatus, tagIds, iterationId, filter)


@router.get("/projects/{projectId}/images/tagged/count", tags=["images"], summary="get_tagged_image_count")
def get_tagged_image_count(ctx: Ctx, projectId: str, iterationId: str | None = None,
                           tagIds: str | None = None):
    return _count(ctx, projectId, "Tagged", tagIds, iterationId)


@router.get("/projects/{projectId}/images/untagged/count", tags=["images"], summary="get_untagged_image_count")
def get_untagged_image_count(ctx: Ctx, projectId: str, iterationId: str | None = None):
    return _count(ctx, projectId, "Untagged", None, iterationId)


@router.delete("/projects/{projectId}/images", tags=["images"], summary="delete_images",
               responses={202: {"description": "accepted (allImages)"}, 204: {"description": "deleted"}})
def delete_images(ctx: Ctx, projectId: str, imageIds: str | None = None, allImages: bool = False,
                  allIterations: bool = False):
    ids = csv_ids(imageIds, "imageIds", cap=rules.limit("ids_per_request"))
    if not ids and not allImages:
        raise CvlabError("BadRequestInvalidIds", "Pass imageIds=... or allImages=true to say which images to delete.")
    ctx.ws.delete_images(projectId, image_ids=ids, all_images=allImages)
    # Azure answers 202 for the asynchronous "all images" delete; cvlab's is done already but keeps the code.
    return Response(status_code=202 if (allImages or allIterations) else 204)


@router.post("/projects/{projectId}/images/metadata", tags=["images"], summary="update_image_metadata")
async def update_image_metadata(request: Request, ctx: Ctx, projectId: str, imageIds: str = Query(...)):
    ids = csv_ids(imageIds, "imageIds", cap=rules.limit("ids_per_request")) or []
    metadata = await json_body(request, required=True)
    if not isinstance(metadata, dict):
        raise CvlabError("BadRequestImageMetadataKey", "The body must be a JSON object of metadata keys to values.")
    updated = await run_in_threadpool(ctx.ws.update_image_metadata, projectId, ids, metadata)
    return wire.image_metadata_update_summary(updated)

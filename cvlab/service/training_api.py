"""Training API routes (``/customvision/v3.x/training/...``), exactly as SDK 3.1.1 calls them.

Routes only translate: parse the wire, call the workspace / training / performance / export core, convert the
records back with ``wire``. Rules live in the core and arrive here as ``CvlabError``.
"""
from __future__ import annotations

import base64
import binascii
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Query, Request, Security
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from cvlab import active
from cvlab import domains as cvdomains
from cvlab import rules
from cvlab.errors import CvlabError

from . import transfer, wire
from .bodies import ImageTooLarge, image_payloads, json_body
from .context import ctx_of, settle_stores
from .fetch import fetch_image, fetch_images, seat_of
from .predicting import answer, predict_and_store
from .schemas import (ImageFileCreateBatch, ImageIdCreateBatch, ImageRegionCreateBatch, ImageTagCreateBatch,
                      ImageUrl, ImageUrlCreateBatch, IterationUpdate, PredictionQueryToken, ProjectUpdate,
                      SuggestedTagAndRegionQueryToken, TagFilter, TagUpdate, TrainingParameters)

_key_doc = APIKeyHeader(name="Training-Key", auto_error=False, description="the training key `cvlab serve` printed")
router = APIRouter(dependencies=[Security(_key_doc), Depends(settle_stores)])

TAKE_DEFAULT = 50


# ---- helpers ---------------------------------------------------------------------------------------------------
def _csv(value: str | None, what: str = "tagIds", cap: int | None = None) -> list[str] | None:
    if value is None or value == "":
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if cap is not None and len(items) > cap:
        raise CvlabError("BadRequestInvalidIds", f"{what} has {len(items)} ids: pass at most {cap} per call.")
    return [rules.check_guid(v, what[:-1] if what.endswith("s") else what) for v in items]


def _summary_response(summary, request: Request) -> JSONResponse:
    body = wire.create_summary(summary, ctx_of(request).uri_factory(request))
    return JSONResponse(body, status_code=200 if summary.is_batch_successful else 207)


def _no_content() -> Response:
    return Response(status_code=204)


def _take_skip(take: int, skip: int) -> None:
    rules.check_limit("take", "S0", take, 0, "images per page (take)")
    if take < 0 or skip < 0:
        raise CvlabError("BadRequestInvalid", "take and skip must be zero or positive.")


def _regions(regions) -> list[dict]:
    return [{"tag_id": r.tag_id, "left": r.left, "top": r.top, "width": r.width, "height": r.height}
            for r in (regions or [])]


def _check_batch(n: int) -> None:
    """Batch-size check before work the core cannot see (fetching URLs, reading stored predictions)."""
    if n == 0:
        raise CvlabError("BadRequestImageBatch", "The batch has no images: add at least one entry to 'images'.")
    rules.check_limit("images_per_batch", "S0", n, 0, "images per batch")


# ---- domains ---------------------------------------------------------------------------------------------------
@router.get("/domains", tags=["domains"], summary="get_domains")
def get_domains():
    return [wire.domain(d) for d in cvdomains.get_domains()]


@router.get("/domains/{domainId}", tags=["domains"], summary="get_domain")
def get_domain(domainId: str):
    return wire.domain(cvdomains.get_domain(domainId))


# ---- projects --------------------------------------------------------------------------------------------------
@router.get("/projects", tags=["projects"], summary="get_projects")
def get_projects(request: Request):
    return [wire.project(p) for p in ctx_of(request).ws.get_projects()]


@router.post("/projects", tags=["projects"], summary="create_project")
async def create_project(request: Request, name: str = Query(...), description: str | None = Query(None),
                         domainId: str | None = Query(None), classificationType: str | None = Query(None),
                         targetExportPlatforms: str | None = Query(None)):
    # An optional CreateProjectOptions body (Azure storage container / queue URIs) has no local meaning: it is
    # read, so a malformed body still gets a clear error, and otherwise ignored.
    await json_body(request)
    ws = ctx_of(request).ws
    platforms = targetExportPlatforms.split(",") if targetExportPlatforms else None
    p = await run_in_threadpool(ws.create_project, name, description or "", domain_id=domainId,
                                classification_type=classificationType, target_export_platforms=platforms)
    return wire.project(p)


@router.get("/projects/{projectId}/export", tags=["projects"], summary="export_project")
def export_project(request: Request, projectId: str):
    return transfer.export_token(ctx_of(request), projectId)


@router.post("/projects/import", tags=["projects"], summary="import_project")
def import_project(request: Request, token: str = Query(...), name: str | None = None):
    return wire.project(transfer.import_project(ctx_of(request), token, name))


@router.get("/projects/{projectId}/artifacts", tags=["projects"], summary="get_artifact",
            response_class=FileResponse)
def get_artifact(request: Request, projectId: str, path: str = Query(...)):
    """Files of the project's iterations, by path relative to the workspace: ``iterations/<id>/<file>``."""
    ws = ctx_of(request).ws
    parts = path.replace("\\", "/").strip("/").split("/")
    ids = {it.id for it in ws.get_iterations(projectId)}
    if len(parts) != 3 or parts[0] != "iterations" or parts[1] not in ids or parts[2] in ("", ".", ".."):
        raise CvlabError("BadRequestInvalidArtifactUri", f"No artifact {path!r}: use iterations/<iteration id>/<file> "
                         "for an iteration of this project (e.g. evaluation.json).")
    target = ws.iteration_dir(parts[1]) / parts[2]
    if not target.is_file():
        raise CvlabError("NotFound", f"Artifact {path!r} does not exist.")
    return FileResponse(target, media_type="application/octet-stream")


@router.get("/projects/{projectId}", tags=["projects"], summary="get_project")
def get_project(request: Request, projectId: str):
    return wire.project(ctx_of(request).ws.get_project(projectId))


@router.delete("/projects/{projectId}", tags=["projects"], status_code=204, summary="delete_project")
def delete_project(request: Request, projectId: str):
    ctx_of(request).ws.delete_project(projectId)
    return _no_content()


@router.patch("/projects/{projectId}", tags=["projects"], summary="update_project")
def update_project(request: Request, projectId: str, body: ProjectUpdate):
    kwargs = {}
    if body.name is not None:
        kwargs["name"] = body.name
    if body.description is not None:
        kwargs["description"] = body.description
    s = body.settings
    if s is not None:
        if s.domain_id is not None:
            kwargs["domain_id"] = s.domain_id
        if s.classification_type is not None:
            kwargs["classification_type"] = s.classification_type
        if s.target_export_platforms is not None:
            kwargs["target_export_platforms"] = s.target_export_platforms
    return wire.project(ctx_of(request).ws.update_project(projectId, **kwargs))


# ---- tags ------------------------------------------------------------------------------------------------------
@router.get("/projects/{projectId}/tags", tags=["tags"], summary="get_tags")
def get_tags(request: Request, projectId: str, iterationId: str | None = None):
    ws = ctx_of(request).ws
    if iterationId:
        ws.get_iteration(projectId, iterationId)
    return [wire.tag(t) for t in ws.get_tags(projectId)]


@router.post("/projects/{projectId}/tags", tags=["tags"], summary="create_tag")
def create_tag(request: Request, projectId: str, name: str = Query(...), description: str | None = None,
               type: str | None = None):
    t = ctx_of(request).ws.create_tag(projectId, name, description or "", type or "Regular")
    return wire.tag(t)


@router.get("/projects/{projectId}/tags/{tagId}", tags=["tags"], summary="get_tag")
def get_tag(request: Request, projectId: str, tagId: str, iterationId: str | None = None):
    return wire.tag(ctx_of(request).ws.get_tag(projectId, tagId))


@router.patch("/projects/{projectId}/tags/{tagId}", tags=["tags"], summary="update_tag")
def update_tag(request: Request, projectId: str, tagId: str, body: TagUpdate):
    kwargs = {k: v for k, v in (("name", body.name), ("description", body.description), ("type", body.type))
              if v is not None}
    return wire.tag(ctx_of(request).ws.update_tag(projectId, tagId, **kwargs))


@router.delete("/projects/{projectId}/tags/{tagId}", tags=["tags"], status_code=204, summary="delete_tag")
def delete_tag(request: Request, projectId: str, tagId: str):
    ctx_of(request).ws.delete_tag(projectId, tagId)
    return _no_content()


# ---- images: upload --------------------------------------------------------------------------------------------
def _entries_from_bytes(payloads, tag_ids):
    from cvlab.workspace import ImageEntry
    return [ImageEntry(data=data, name=name, tag_ids=tuple(tag_ids or ())) for name, data in payloads]


@router.post("/projects/{projectId}/images", tags=["images"], summary="create_images_from_data",
             responses={207: {"description": "some images failed; see per-image status"}})
async def create_images_from_data(request: Request, projectId: str, tagIds: str | None = None):
    tags = _csv(tagIds, cap=rules.limit("tags_per_batch"))
    ws = ctx_of(request).ws
    try:
        payloads = await image_payloads(request, "training")
    except ImageTooLarge as exc:  # one raw image over 6 MB, refused unread: Azure's per-image ErrorImageSize
        return await run_in_threadpool(_oversized_upload, request, ws, projectId, exc)
    summary = await run_in_threadpool(ws.create_images, projectId, _entries_from_bytes(payloads, None), tags)
    return _summary_response(summary, request)


def _oversized_upload(request: Request, ws, project_id: str, exc: ImageTooLarge) -> JSONResponse:
    from cvlab.images import batch_status
    from cvlab.model import ImageCreateResult, ImageCreateSummary
    ws.get_project(project_id)  # NotFoundProject first, as for any upload
    err = CvlabError(exc.code, exc.message)
    response = _summary_response(ImageCreateSummary(False, [ImageCreateResult(None, batch_status(err), None,
                                                                                err.message)]), request)
    response.headers.update(exc.headers)  # the rest of the body is never read
    return response


def _b64(contents: str, name: str | None) -> bytes:
    try:
        return base64.b64decode(contents, validate=True)
    except (binascii.Error, ValueError):
        return b""  # the workspace reports it per image as ErrorSource / BadRequestImageStream


@router.post("/projects/{projectId}/images/files", tags=["images"], summary="create_images_from_files")
def create_images_from_files(request: Request, projectId: str, batch: ImageFileCreateBatch):
    from cvlab.workspace import ImageEntry
    entries = [ImageEntry(data=_b64(e.contents, e.name), name=e.name, tag_ids=tuple(e.tag_ids or ()),
                          regions=tuple(_regions(e.regions)), source_url=f'"{e.name}"' if e.name else None)
               for e in batch.images]
    summary = ctx_of(request).ws.create_images(projectId, entries, batch.tag_ids, batch.metadata)
    return _summary_response(summary, request)


@router.post("/projects/{projectId}/images/urls", tags=["images"], summary="create_images_from_urls")
def create_images_from_urls(request: Request, projectId: str, batch: ImageUrlCreateBatch):
    from cvlab.workspace import ImageEntry
    _check_batch(len(batch.images))
    fetched = fetch_images([e.url for e in batch.images], rules.limit("max_image_bytes_training"), seat_of(request))
    entries = []
    for e, data in zip(batch.images, fetched):
        if isinstance(data, CvlabError):
            data = b""  # reported per image (ErrorSource) by the workspace, as Azure does
        entries.append(ImageEntry(data=data, name=e.url.rsplit("/", 1)[-1] or None, tag_ids=tuple(e.tag_ids or ()),
                                  regions=tuple(_regions(e.regions)), source_url=e.url))
    summary = ctx_of(request).ws.create_images(projectId, entries, batch.tag_ids, batch.metadata)
    return _summary_response(summary, request)


@router.post("/projects/{projectId}/images/predictions", tags=["images"], summary="create_images_from_predictions")
def create_images_from_predictions(request: Request, projectId: str, batch: ImageIdCreateBatch):
    _check_batch(len(batch.images))
    items = [{"id": e.id, "tag_ids": e.tag_ids or [], "regions": _regions(e.regions)} for e in batch.images]
    summary = active.add_predictions_to_training(ctx_of(request).ws, projectId, items, tag_ids=batch.tag_ids,
                                                 metadata=batch.metadata)
    return _summary_response(summary, request)


# ---- images: listing -------------------------------------------------------------------------------------------
def _list(request, projectId, *, tagging_status="All", tagIds=None, image_ids=None, orderBy=None, take=TAKE_DEFAULT,
          skip=0, iterationId=None, filter=None):
    ws = ctx_of(request).ws
    if iterationId:
        ws.get_iteration(projectId, iterationId)
    imgs = ws.get_images(projectId, tagging_status=tagging_status or "All",
                         tag_ids=_csv(tagIds, cap=rules.limit("tags_per_batch")), image_ids=image_ids,
                         order_by=orderBy or "Newest", take=take, skip=skip, filter=filter)
    uris = ctx_of(request).uri_factory(request)
    return [wire.image(i, uris) for i in imgs]


@router.get("/projects/{projectId}/images", tags=["images"], summary="get_images")
def get_images(request: Request, projectId: str, iterationId: str | None = None, tagIds: str | None = None,
               taggingStatus: str | None = None, orderBy: str | None = None, take: int = TAKE_DEFAULT,
               skip: int = 0, filter: str | None = Query(None, alias="$filter")):
    return _list(request, projectId, tagging_status=taggingStatus, tagIds=tagIds, orderBy=orderBy, take=take,
                 skip=skip, iterationId=iterationId, filter=filter)


@router.get("/projects/{projectId}/images/tagged", tags=["images"], summary="get_tagged_images")
def get_tagged_images(request: Request, projectId: str, iterationId: str | None = None, tagIds: str | None = None,
                      orderBy: str | None = None, take: int = TAKE_DEFAULT, skip: int = 0):
    return _list(request, projectId, tagging_status="Tagged", tagIds=tagIds, orderBy=orderBy, take=take, skip=skip,
                 iterationId=iterationId)


@router.get("/projects/{projectId}/images/untagged", tags=["images"], summary="get_untagged_images")
def get_untagged_images(request: Request, projectId: str, iterationId: str | None = None,
                        orderBy: str | None = None, take: int = TAKE_DEFAULT, skip: int = 0):
    return _list(request, projectId, tagging_status="Untagged", orderBy=orderBy, take=take, skip=skip,
                 iterationId=iterationId)


@router.get("/projects/{projectId}/images/id", tags=["images"], summary="get_images_by_ids")
def get_images_by_ids(request: Request, projectId: str, imageIds: str | None = None,
                      iterationId: str | None = None):
    ids = _csv(imageIds, "imageIds", cap=rules.limit("ids_per_request")) or []
    ws = ctx_of(request).ws
    uris = ctx_of(request).uri_factory(request)
    return [wire.image(ws.get_image(projectId, i), uris) for i in ids]


def _count(request, projectId, tagging_status, tagIds=None, iterationId=None, filter=None) -> int:
    ws = ctx_of(request).ws
    if iterationId:
        ws.get_iteration(projectId, iterationId)
    return ws.get_image_count(projectId, tagging_status=tagging_status or "All",
                              tag_ids=_csv(tagIds, cap=rules.limit("tags_per_batch")), filter=filter)


@router.get("/projects/{projectId}/images/count", tags=["images"], summary="get_image_count")
def get_image_count(request: Request, projectId: str, iterationId: str | None = None,
                    taggingStatus: str | None = None, tagIds: str | None = None,
                    filter: str | None = Query(None, alias="$filter")):
    return _count(request, projectId, taggingStatus, tagIds, iterationId, filter)


@router.get("/projects/{projectId}/images/tagged/count", tags=["images"], summary="get_tagged_image_count")
def get_tagged_image_count(request: Request, projectId: str, iterationId: str | None = None,
                           tagIds: str | None = None):
    return _count(request, projectId, "Tagged", tagIds, iterationId)


@router.get("/projects/{projectId}/images/untagged/count", tags=["images"], summary="get_untagged_image_count")
def get_untagged_image_count(request: Request, projectId: str, iterationId: str | None = None):
    return _count(request, projectId, "Untagged", None, iterationId)


@router.delete("/projects/{projectId}/images", tags=["images"], summary="delete_images",
               responses={202: {"description": "accepted (allImages)"}, 204: {"description": "deleted"}})
def delete_images(request: Request, projectId: str, imageIds: str | None = None, allImages: bool = False,
                  allIterations: bool = False):
    ids = _csv(imageIds, "imageIds", cap=rules.limit("ids_per_request"))
    if not ids and not allImages:
        raise CvlabError("BadRequestInvalidIds", "Pass imageIds=... or allImages=true to say which images to delete.")
    ctx_of(request).ws.delete_images(projectId, image_ids=ids, all_images=allImages)
    # Azure answers 202 for the asynchronous "all images" delete; cvlab's is done already but keeps the code.
    return Response(status_code=202 if (allImages or allIterations) else 204)


@router.post("/projects/{projectId}/images/metadata", tags=["images"], summary="update_image_metadata")
async def update_image_metadata(request: Request, projectId: str, imageIds: str = Query(...)):
    ids = _csv(imageIds, "imageIds", cap=rules.limit("ids_per_request")) or []
    metadata = await json_body(request, required=True)
    if not isinstance(metadata, dict):
        raise CvlabError("BadRequestImageMetadataKey", "The body must be a JSON object of metadata keys to values.")
    updated = await run_in_threadpool(ctx_of(request).ws.update_image_metadata, projectId, ids, metadata)
    return {"isBatchSuccessful": True, "images": [
        {"imageId": im.id, "status": "OK", "metadata": dict(im.metadata)} for im in updated]}


# ---- image tags and regions ------------------------------------------------------------------------------------
@router.post("/projects/{projectId}/images/tags", tags=["images"], summary="create_image_tags")
def create_image_tags(request: Request, projectId: str, batch: ImageTagCreateBatch):
    pairs = [(t.image_id, t.tag_id) for t in batch.tags]
    res = ctx_of(request).ws.create_image_tags(projectId, pairs)
    conv = lambda items: [{"imageId": d["image_id"], "tagId": d["tag_id"]} for d in items]  # noqa: E731
    return {"created": conv(res.get("created", [])), "duplicated": conv(res.get("duplicated", [])),
            "exceeded": conv(res.get("exceeded", []))}


@router.delete("/projects/{projectId}/images/tags", tags=["images"], status_code=204, summary="delete_image_tags")
def delete_image_tags(request: Request, projectId: str, imageIds: str = Query(...), tagIds: str = Query(...)):
    ctx_of(request).ws.delete_image_tags(projectId, _csv(imageIds, "imageIds", cap=rules.limit("ids_per_delete")),
                                         _csv(tagIds, cap=rules.limit("tags_per_batch")))
    return _no_content()


@router.post("/projects/{projectId}/images/regions", tags=["images"], summary="create_image_regions")
def create_image_regions(request: Request, projectId: str, batch: ImageRegionCreateBatch):
    rules.check_limit("regions_per_batch", "S0", len(batch.regions), 0)
    regions = [{"image_id": r.image_id, "tag_id": r.tag_id, "left": r.left, "top": r.top, "width": r.width,
                "height": r.height} for r in batch.regions]
    res = ctx_of(request).ws.create_image_regions(projectId, regions)
    entry = lambda r: {"imageId": r["image_id"], "tagId": r["tag_id"], "left": r["left"], "top": r["top"],  # noqa
                       "width": r["width"], "height": r["height"]}
    created = [{"imageId": r["image_id"], "regionId": r["region_id"], "tagName": r["tag_name"],
                "created": wire.dt(r["created"]), "tagId": r["tag_id"], "left": r["left"], "top": r["top"],
                "width": r["width"], "height": r["height"]} for r in res.get("created", [])]
    status = 200 if not (res.get("duplicated") or res.get("exceeded")) else 207
    return JSONResponse({"created": created, "duplicated": [entry(r) for r in res.get("duplicated", [])],
                         "exceeded": [entry(r) for r in res.get("exceeded", [])]}, status_code=status)


@router.delete("/projects/{projectId}/images/regions", tags=["images"], status_code=204,
               summary="delete_image_regions")
def delete_image_regions(request: Request, projectId: str, regionIds: str = Query(...)):
    ctx_of(request).ws.delete_image_regions(projectId, _csv(regionIds, "regionIds", cap=rules.limit("ids_per_delete")))
    return _no_content()


# ---- training and iterations -----------------------------------------------------------------------------------
@router.post("/projects/{projectId}/train", tags=["iterations"], summary="train_project")
async def train_project(request: Request, projectId: str, trainingType: str | None = None,
                        reservedBudgetInHours: int = 0, forceTrain: bool = False,
                        notificationEmailAddress: str | None = None):
    from cvlab.training import train_project as core_train
    raw = await json_body(request)
    params = TrainingParameters.model_validate(raw) if raw else TrainingParameters()
    if params.custom_base_model_info and params.custom_base_model_info.iteration_id:
        raise CvlabError("BadRequestNotSupported", "Training from a custom base model is not supported by cvlab: "
                         "train without customBaseModelInfo.")
    if notificationEmailAddress is not None and "@" not in notificationEmailAddress:
        raise CvlabError("BadRequestInvalidEmailAddress", f"{notificationEmailAddress!r} is not an e-mail address.")
    ws = ctx_of(request).ws
    it = await run_in_threadpool(core_train, ws, projectId, training_type=trainingType or "Regular",
                                 reserved_budget_in_hours=reservedBudgetInHours, force_train=forceTrain,
                                 selected_tags=params.selected_tags, background=True, show_progress=False)
    return wire.iteration(it)


@router.get("/projects/{projectId}/iterations", tags=["iterations"], summary="get_iterations")
def get_iterations(request: Request, projectId: str):
    return [wire.iteration(i) for i in ctx_of(request).ws.get_iterations(projectId)]


@router.get("/projects/{projectId}/iterations/{iterationId}", tags=["iterations"], summary="get_iteration")
def get_iteration(request: Request, projectId: str, iterationId: str):
    return wire.iteration(ctx_of(request).ws.get_iteration(projectId, iterationId))


@router.patch("/projects/{projectId}/iterations/{iterationId}", tags=["iterations"], summary="update_iteration")
def update_iteration(request: Request, projectId: str, iterationId: str, body: IterationUpdate):
    if not body.name:
        raise CvlabError("BadRequestIterationName", "Give the iteration a non-empty name.")
    return wire.iteration(ctx_of(request).ws.update_iteration(projectId, iterationId, name=body.name))


@router.delete("/projects/{projectId}/iterations/{iterationId}", tags=["iterations"], status_code=204,
               summary="delete_iteration")
def delete_iteration(request: Request, projectId: str, iterationId: str):
    ctx = ctx_of(request)
    ctx.ws.delete_iteration(projectId, iterationId)
    return _no_content()


@router.post("/projects/{projectId}/iterations/{iterationId}/publish", tags=["iterations"],
             summary="publish_iteration")
def publish_iteration(request: Request, projectId: str, iterationId: str, publishName: str = Query(...),
                      predictionId: str = Query(...), overwrite: bool | None = None):
    ctx = ctx_of(request)
    if predictionId != ctx.keys.prediction_resource_id:
        raise CvlabError("BadRequestInvalidPublishTarget", "predictionId must be this endpoint's prediction resource "
                         f"id, {ctx.keys.prediction_resource_id!r} (printed by `cvlab serve`).")
    kwargs = {"overwrite": overwrite} if overwrite is not None else {}
    ctx.ws.publish_iteration(projectId, iterationId, publishName, predictionId, **kwargs)
    return True


@router.delete("/projects/{projectId}/iterations/{iterationId}/publish", tags=["iterations"], status_code=204,
               summary="unpublish_iteration")
def unpublish_iteration(request: Request, projectId: str, iterationId: str):
    ctx_of(request).ws.unpublish_iteration(projectId, iterationId)
    return _no_content()


# ---- performance -----------------------------------------------------------------------------------------------
@router.get("/projects/{projectId}/iterations/{iterationId}/performance", tags=["performance"],
            summary="get_iteration_performance")
def get_iteration_performance(request: Request, projectId: str, iterationId: str, threshold: float = 0.5,
                              overlapThreshold: float = 0.5):
    from cvlab.performance import get_iteration_performance as perf
    _unit("threshold", threshold)
    _unit("overlapThreshold", overlapThreshold)
    return wire.iteration_performance(perf(ctx_of(request).ws, projectId, iterationId, threshold=threshold,
                                           overlap_threshold=overlapThreshold))


def _unit(name, value):
    if not 0.0 <= value <= 1.0:
        raise CvlabError("BadRequestInvalid", f"{name} is a fraction between 0 and 1 (got {value}); 50% is 0.5.")


@router.get("/projects/{projectId}/iterations/{iterationId}/performance/images", tags=["performance"],
            summary="get_image_performances")
def get_image_performances(request: Request, projectId: str, iterationId: str, tagIds: str | None = None,
                           orderBy: str | None = None, take: int = TAKE_DEFAULT, skip: int = 0):
    from cvlab.performance import get_image_performances as core
    _take_skip(take, skip)
    ctx = ctx_of(request)
    items = core(ctx.ws, projectId, iterationId, tag_ids=_csv(tagIds, cap=rules.limit("tags_per_batch")),
                 order_by=orderBy or "Newest", take=take, skip=skip)
    uris = ctx.uri_factory(request)
    # Blob URIs are signed per (project, image); images deleted since training have none.
    return [wire.image_performance(p, uris(_Ref(projectId, p.id)) if p.created else {}) for p in items]


class _Ref:
    def __init__(self, project_id, item_id):
        self.project_id, self.id = project_id, item_id


@router.get("/projects/{projectId}/iterations/{iterationId}/performance/images/count", tags=["performance"],
            summary="get_image_performance_count")
def get_image_performance_count(request: Request, projectId: str, iterationId: str, tagIds: str | None = None):
    from cvlab.performance import get_image_performance_count as core
    return core(ctx_of(request).ws, projectId, iterationId, tag_ids=_csv(tagIds, cap=rules.limit("tags_per_batch")))


# ---- export ----------------------------------------------------------------------------------------------------
@router.post("/projects/{projectId}/iterations/{iterationId}/export", tags=["export"], summary="export_iteration")
def export_iteration(request: Request, projectId: str, iterationId: str, platform: str = Query(...),
                     flavor: str | None = None):
    from cvlab import export as cvexport
    e = cvexport.export_iteration(ctx_of(request).ws, projectId, iterationId, platform, flavor, background=True)
    return wire.export(e, _download_link(request))


@router.get("/projects/{projectId}/iterations/{iterationId}/export", tags=["export"], summary="get_exports")
def get_exports(request: Request, projectId: str, iterationId: str):
    """Every call signs fresh download links (they expire, like Azure's SAS URLs)."""
    from cvlab import export as cvexport
    link = _download_link(request)
    return [wire.export(e, link) for e in cvexport.get_exports(ctx_of(request).ws, projectId, iterationId)]


def _download_link(request: Request):
    from .blobs import export_link
    ctx, base = ctx_of(request), str(request.base_url)
    return lambda relative: export_link(ctx, base, relative)


# ---- quick test, stored predictions ----------------------------------------------------------------------------
def _quick_iteration(ws, projectId: str, iterationId: str | None):
    if iterationId:
        return ws.get_iteration(projectId, iterationId)
    done = [i for i in ws.get_iterations(projectId) if i.status == "Completed"]
    if not done:
        raise CvlabError("NotFoundProjectDefaultIteration", "This project has no trained iteration to quick-test: "
                         "train it first (or pass iterationId).")
    return max(done, key=lambda i: (i.trained_at or i.created or datetime.min.replace(tzinfo=timezone.utc)))


@router.post("/projects/{projectId}/quicktest/image", tags=["predictions"], summary="quick_test_image")
async def quick_test_image(request: Request, projectId: str, iterationId: str | None = None, store: bool = True):
    payloads = await image_payloads(request)
    ctx = ctx_of(request)
    it = await run_in_threadpool(_quick_iteration, ctx.ws, projectId, iterationId)
    return answer(ctx, await run_in_threadpool(predict_and_store, ctx, projectId, it, payloads[0][1], store, None,
                                               None))


@router.post("/projects/{projectId}/quicktest/url", tags=["predictions"], summary="quick_test_image_url")
def quick_test_image_url(request: Request, projectId: str, body: ImageUrl, iterationId: str | None = None,
                         store: bool = True):
    ctx = ctx_of(request)
    it = _quick_iteration(ctx.ws, projectId, iterationId)
    data = fetch_image(body.url, rules.limit("max_image_bytes_prediction"), seat_of(request))  # a stored prediction
    return answer(ctx, predict_and_store(ctx, projectId, it, data, store, None, None))


@router.post("/projects/{projectId}/predictions/query", tags=["predictions"], summary="query_predictions")
def query_predictions(request: Request, projectId: str, query: PredictionQueryToken):
    """Tags with thresholds, time range, application, orderBy Newest / Oldest / Suggested, maxCount, continuation."""
    ctx = ctx_of(request)
    token = query.model_dump(by_alias=True, exclude_none=True, mode="json")
    res = active.query_predictions(ctx.ws, projectId, token)
    uris = ctx.uri_factory(request, "predictions")
    return {"token": res.token, "results": [wire.stored_prediction(p, uris) for p in res.results]}


@router.delete("/projects/{projectId}/predictions", tags=["predictions"], status_code=204,
               summary="delete_prediction")
def delete_prediction(request: Request, projectId: str, ids: str = Query(...)):
    items = _csv(ids, "ids", cap=rules.limit("ids_per_delete"))
    if not items:
        raise CvlabError("BadRequestPredictionIdsMissing", "Pass ids=<prediction ids> to delete.")
    ctx_of(request).ws.delete_predictions(projectId, items)
    return _no_content()


# ---- suggestions (cvlab.active) -------------------------------------------------------------------------------
def _suggested(sug, uris=None, domain_id=None) -> dict:
    out = {"id": sug.id, "project": sug.project_id, "iteration": sug.iteration_id, "created": wire.dt(sug.created),
           "predictions": [wire.prediction(x) for x in sug.predictions],
           "predictionUncertainty": float(sug.prediction_uncertainty)}
    if uris is not None and sug.image is not None:
        out.update(uris(sug.image))
        out.update(width=sug.image.width, height=sug.image.height, domain=domain_id)
    return out


@router.post("/projects/{projectId}/tagsandregions/suggestions", tags=["suggestions"],
             summary="suggest_tags_and_regions")
def suggest_tags_and_regions(request: Request, projectId: str, iterationId: str = Query(...),
                             imageIds: str = Query(...)):
    ids = _csv(imageIds, "imageIds", cap=rules.limit("images_per_batch")) or []
    return [_suggested(s) for s in active.suggest_tags_and_regions(ctx_of(request).ws, projectId, iterationId, ids)]


@router.post("/projects/{projectId}/images/suggested", tags=["suggestions"], summary="query_suggested_images")
def query_suggested_images(request: Request, projectId: str, query: SuggestedTagAndRegionQueryToken,
                           iterationId: str = Query(...)):
    ctx = ctx_of(request)
    res = active.query_suggested_images(ctx.ws, projectId, iterationId, tag_ids=query.tag_ids,
                                        threshold=query.threshold or 0.0,
                                        sort_by=query.sort_by or "UncertaintyDescending",
                                        max_count=query.max_count, continuation=query.continuation,
                                        session=query.session)
    domain_id = ctx.ws.get_iteration(projectId, iterationId).domain_id
    uris = ctx.uri_factory(request)
    return {"token": res.token, "results": [_suggested(s, uris, domain_id) for s in res.results]}


@router.post("/projects/{projectId}/images/suggested/count", tags=["suggestions"],
             summary="query_suggested_image_count")
def query_suggested_image_count(request: Request, projectId: str, body: TagFilter, iterationId: str = Query(...)):
    return active.query_suggested_image_count(ctx_of(request).ws, projectId, iterationId, tag_ids=body.tag_ids,
                                              threshold=body.threshold or 0.0)


@router.post("/projects/{projectId}/images/{imageId}/regionproposals", tags=["suggestions"],
             summary="get_image_region_proposals")
def get_image_region_proposals(request: Request, projectId: str, imageId: str):
    ctx = ctx_of(request)
    ws = ctx.ws
    project = ws.get_project(projectId)
    img = ws.get_image(projectId, imageId)
    proposals = []
    if project.project_type == "ObjectDetection":
        done = [i for i in ws.get_iterations(projectId) if i.status == "Completed"]
        if done:
            pred = ctx.predictor(done[-1].id)
            proposals = [{"confidence": p["probability"], "boundingBox": wire.bounding_box(p["bounding_box"])}
                         for p in pred.predict(ws.open_image(img)) if p.get("bounding_box")]
    return {"projectId": projectId, "imageId": img.id, "proposals": proposals}

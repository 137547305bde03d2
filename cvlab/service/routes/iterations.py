"""Training, iterations (rename, delete, publish) and their Performance page."""
from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from cvlab import performance, rules, training
from cvlab.errors import CvlabError
from cvlab.portal import outbox

from .. import wire
from ..bodies import json_body
from ..context import Ctx
from ..schemas import IterationUpdate, TrainingParameters
from .common import TAKE_DEFAULT, check_take_skip, csv_ids, no_content

router = APIRouter()


@router.post("/projects/{projectId}/train", tags=["iterations"], summary="train_project")
async def train_project(request: Request, ctx: Ctx, projectId: str, trainingType: str | None = None,
                        reservedBudgetInHours: int = 0, forceTrain: bool = False,
                        notificationEmailAddress: str | None = None):
    raw = await json_body(request)
    params = TrainingParameters.model_validate(raw) if raw else TrainingParameters()
    if params.custom_base_model_info and params.custom_base_model_info.iteration_id:
        raise CvlabError("BadRequestNotSupported", "Training from a custom base model is not supported by cvlab: "
                         "train without customBaseModelInfo.")
    address = outbox.check_address(notificationEmailAddress) if notificationEmailAddress is not None else None
    ws = ctx.ws
    it = await run_in_threadpool(training.train_project, ws, projectId, training_type=trainingType or "Regular",
                                 reserved_budget_in_hours=reservedBudgetInHours, force_train=forceTrain,
                                 selected_tags=params.selected_tags, background=True, show_progress=False)
    if address:  # Azure e-mails it when the training ends; in cvlab the message goes to the workspace's outbox
        await run_in_threadpool(outbox.subscribe, ws, projectId, it.id, address,
                                portal_url=str(request.base_url).rstrip("/"))
    return wire.iteration(it)


@router.get("/projects/{projectId}/iterations", tags=["iterations"], summary="get_iterations")
def get_iterations(ctx: Ctx, projectId: str):
    return [wire.iteration(i) for i in ctx.ws.get_iterations(projectId)]


@router.get("/projects/{projectId}/iterations/{iterationId}", tags=["iterations"], summary="get_iteration")
def get_iteration(ctx: Ctx, projectId: str, iterationId: str):
    return wire.iteration(ctx.ws.get_iteration(projectId, iterationId))


@router.patch("/projects/{projectId}/iterations/{iterationId}", tags=["iterations"], summary="update_iteration")
def update_iteration(ctx: Ctx, projectId: str, iterationId: str, body: IterationUpdate):
    if not body.name:
        raise CvlabError("BadRequestIterationName", "Give the iteration a non-empty name.")
    return wire.iteration(ctx.ws.update_iteration(projectId, iterationId, name=body.name))


@router.delete("/projects/{projectId}/iterations/{iterationId}", tags=["iterations"], status_code=204,
               summary="delete_iteration")
def delete_iteration(ctx: Ctx, projectId: str, iterationId: str):
    ctx.ws.delete_iteration(projectId, iterationId)
    return no_content()


@router.post("/projects/{projectId}/iterations/{iterationId}/publish", tags=["iterations"],
             summary="publish_iteration")
def publish_iteration(ctx: Ctx, projectId: str, iterationId: str, publishName: str = Query(...),
                      predictionId: str = Query(...), overwrite: bool | None = None):
    if predictionId != ctx.keys.prediction_resource_id:
        raise CvlabError("BadRequestInvalidPublishTarget", "predictionId must be this endpoint's prediction resource "
                         f"id, {ctx.keys.prediction_resource_id!r} (printed by `cvlab serve`).")
    kwargs = {"overwrite": overwrite} if overwrite is not None else {}
    ctx.ws.publish_iteration(projectId, iterationId, publishName, predictionId, **kwargs)
    return True


@router.delete("/projects/{projectId}/iterations/{iterationId}/publish", tags=["iterations"], status_code=204,
               summary="unpublish_iteration")
def unpublish_iteration(ctx: Ctx, projectId: str, iterationId: str):
    ctx.ws.unpublish_iteration(projectId, iterationId)
    return no_content()


@router.get("/projects/{projectId}/iterations/{iterationId}/performance", tags=["performance"],
            summary="get_iteration_performance")
def get_iteration_performance(ctx: Ctx, projectId: str, iterationId: str, threshold: float = 0.5,
                              overlapThreshold: float = 0.5):
    _unit("threshold", threshold)
    _unit("overlapThreshold", overlapThreshold)
    perf = performance.get_iteration_performance(ctx.ws, projectId, iterationId, threshold=threshold,
                                                 overlap_threshold=overlapThreshold)
    return wire.iteration_performance(perf)


def _unit(name, value):
    if not 0.0 <= value <= 1.0:
        raise CvlabError("BadRequestInvalid", f"{name} is a fraction between 0 and 1 (got {value}); 50% is 0.5.")


@router.get("/projects/{projectId}/iterations/{iterationId}/performance/images", tags=["performance"],
            summary="get_image_performances")
def get_image_performances(request: Request, ctx: Ctx, projectId: str, iterationId: str, tagIds: str | None = None,
                           orderBy: str | None = None, take: int = TAKE_DEFAULT, skip: int = 0):
    check_take_skip(take, skip)
    items = performance.get_image_performances(ctx.ws, projectId, iterationId,
                                               tag_ids=csv_ids(tagIds, cap=rules.limit("tags_per_batch")),
                                               order_by=orderBy or "Newest", take=take, skip=skip)
    uris = ctx.uri_factory(request)
    # Blob URIs are signed per (project, image); images deleted since training have none.
    return [wire.image_performance(p, uris(_Ref(projectId, p.id)) if p.created else {}) for p in items]


class _Ref:
    def __init__(self, project_id, item_id):
        self.project_id, self.id = project_id, item_id


@router.get("/projects/{projectId}/iterations/{iterationId}/performance/images/count", tags=["performance"],
            summary="get_image_performance_count")
def get_image_performance_count(ctx: Ctx, projectId: str, iterationId: str, tagIds: str | None = None):
    return performance.get_image_performance_count(ctx.ws, projectId, iterationId, tag_ids=csv_ids(tagIds, cap=rules.limit("tags_per_batch")))

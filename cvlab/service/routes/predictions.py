"""Quick test (a stored prediction of any iteration) and the Predictions tab (query, delete)."""
from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from cvlab import active, rules
from cvlab.errors import CvlabError

from .. import wire
from ..bodies import image_payloads
from ..context import Ctx
from ..fetch import fetch_image, seat
from ..predicting import answer, predict_and_store
from ..schemas import ImageUrl, PredictionQueryToken
from .common import csv_ids, no_content

router = APIRouter()


def _quick_iteration(ws, projectId: str, iterationId: str | None):
    if iterationId:
        return ws.get_iteration(projectId, iterationId)
    latest = ws.latest_iteration(projectId)
    if latest is None:
        raise CvlabError("NotFoundProjectDefaultIteration", "This project has no trained iteration to quick-test: "
                         "train it first (or pass iterationId).")
    return latest


@router.post("/projects/{projectId}/quicktest/image", tags=["predictions"], summary="quick_test_image")
async def quick_test_image(request: Request, ctx: Ctx, projectId: str, iterationId: str | None = None, store: bool = True):
    payloads = await image_payloads(request)
    it = await run_in_threadpool(_quick_iteration, ctx.ws, projectId, iterationId)
    return answer(ctx, await run_in_threadpool(predict_and_store, ctx, projectId, it, payloads[0][1], store, None,
                                               None))


@router.post("/projects/{projectId}/quicktest/url", tags=["predictions"], summary="quick_test_image_url")
def quick_test_image_url(ctx: Ctx, projectId: str, body: ImageUrl, iterationId: str | None = None,
                         store: bool = True):
    it = _quick_iteration(ctx.ws, projectId, iterationId)
    data = fetch_image(body.url, rules.limit("max_image_bytes_prediction"), seat(ctx, "training"))  # stored
    return answer(ctx, predict_and_store(ctx, projectId, it, data, store, None, None))


@router.post("/projects/{projectId}/predictions/query", tags=["predictions"], summary="query_predictions")
def query_predictions(request: Request, ctx: Ctx, projectId: str, query: PredictionQueryToken):
    """Tags with thresholds, time range, application, orderBy Newest / Oldest / Suggested, maxCount, continuation."""
    res = active.query_predictions(ctx.ws, projectId, query)
    uris = ctx.uri_factory(request, "predictions")
    return {"token": res.token, "results": [wire.stored_prediction(p, uris) for p in res.results]}


@router.delete("/projects/{projectId}/predictions", tags=["predictions"], status_code=204,
               summary="delete_prediction")
def delete_prediction(ctx: Ctx, projectId: str, ids: str = Query(...)):
    items = csv_ids(ids, "ids", cap=rules.limit("ids_per_delete"))
    if not items:
        raise CvlabError("BadRequestPredictionIdsMissing", "Pass ids=<prediction ids> to delete.")
    ctx.ws.delete_predictions(projectId, items)
    return no_content()

"""Prediction API routes (``/customvision/v3.x/prediction/...``): classify and detect, image or URL, with or
without storing the image. Only published iterations answer here, as on Azure."""
from __future__ import annotations

from fastapi import APIRouter, Request, Security
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from cvlab import rules
from cvlab.errors import CvlabError

from .bodies import image_payloads
from .context import ctx_of
from .fetch import fetch_image, seat_of
from .predicting import answer, predict_and_store
from .schemas import ImageUrl

_key_doc = APIKeyHeader(name="Prediction-Key", auto_error=False,
                        description="the prediction key `cvlab serve` printed")
router = APIRouter(dependencies=[Security(_key_doc)], tags=["prediction"])

_TYPE = {"classify": "Classification", "detect": "ObjectDetection"}


def _published(ws, project_id: str, published_name: str):
    it = ws.find_published(project_id, published_name)  # NotFoundProject first, as Azure
    if it is None:
        raise CvlabError("NotFoundIteration", f"Invalid iteration: no iteration of this project is published as "
                         f"{published_name!r}. Publish one with publish_iteration(project_id, iteration_id, "
                         f"{published_name!r}, prediction_resource_id), or check the name.")
    return it


def _predict_image(action: str, store: bool):
    async def route(request: Request, projectId: str, publishedName: str, application: str | None = None):
        payloads = await image_payloads(request)
        ctx = ctx_of(request)

        def work():
            it = _published(ctx.ws, projectId, publishedName)
            return predict_and_store(ctx, projectId, it, payloads[0][1], store, application, _TYPE[action])
        return answer(ctx, await run_in_threadpool(work))
    return route


def _predict_url(action: str, store: bool):
    def route(request: Request, projectId: str, publishedName: str, body: ImageUrl, application: str | None = None):
        ctx = ctx_of(request)
        it = _published(ctx.ws, projectId, publishedName)
        data = fetch_image(body.url, rules.limit("max_image_bytes_prediction"), seat_of(request))
        return answer(ctx, predict_and_store(ctx, projectId, it, data, store, application, _TYPE[action]))
    return route


def fast_routes(prefix: str) -> list[Route]:
    """The image routes again as plain Starlette routes, matched before FastAPI's: the hot path skips FastAPI's
    per-request parameter and dependency solving (~0.3 ms of a ~16 ms prediction on 2 cores). The APIRoutes
    below share their handler but are shadowed by these: they stay only to document the routes in /docs."""
    def endpoint(action: str, store: bool):
        handle = _predict_image(action, store)

        async def fast(request: Request):
            params = request.path_params
            return await handle(request, params["projectId"], params["publishedName"],
                                request.query_params.get("application"))
        return fast
    return [Route(f"{prefix}/{{projectId}}/{action}/iterations/{{publishedName}}/image{'' if store else '/nostore'}",
                  endpoint(action, store), methods=["POST"], include_in_schema=False)
            for action in _TYPE for store in (True, False)]


for _action in ("classify", "detect"):
    for _store in (True, False):
        suffix = "" if _store else "/nostore"
        sdk = f"{_action}_image{'' if _store else '_with_no_store'}"
        router.add_api_route(f"/{{projectId}}/{_action}/iterations/{{publishedName}}/image{suffix}",
                             _predict_image(_action, _store), methods=["POST"], summary=sdk,
                             name=sdk, description="Body: multipart field `imageData`, or raw octet-stream (<= 4 MB).")
        sdk = f"{_action}_image_url{'' if _store else '_with_no_store'}"
        router.add_api_route(f"/{{projectId}}/{_action}/iterations/{{publishedName}}/url{suffix}",
                             _predict_url(_action, _store), methods=["POST"], summary=sdk, name=sdk)

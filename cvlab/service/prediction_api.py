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
from .fetch import fetch_image, seat
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
        data = fetch_image(body.url, rules.limit("max_image_bytes_prediction"), seat(ctx, "prediction"))
        return answer(ctx, predict_and_store(ctx, projectId, it, data, store, application, _TYPE[action]))
    return route


#: The prediction routes, one row each: (action, store?, image or url). Both the documented FastAPI routes and the
#: fast raw ones below are made from this table.
ROUTES = [(action, store, source) for action in _TYPE for store in (True, False) for source in ("image", "url")]


def _path(action: str, store: bool, source: str) -> str:
    return f"/{{projectId}}/{action}/iterations/{{publishedName}}/{source}{'' if store else '/nostore'}"


def _sdk_name(action: str, store: bool, source: str) -> str:
    return f"{action}_image{'_url' if source == 'url' else ''}{'' if store else '_with_no_store'}"


for _action, _store, _source in ROUTES:
    _name = _sdk_name(_action, _store, _source)
    router.add_api_route(_path(_action, _store, _source),
                         (_predict_image if _source == "image" else _predict_url)(_action, _store),
                         methods=["POST"], summary=_name, name=_name,
                         **({"description": "Body: multipart field `imageData`, or raw octet-stream (<= 4 MB)."}
                            if _source == "image" else {}))


def fast_routes(prefix: str) -> list[Route]:
    """The image routes of ``ROUTES`` again as plain Starlette routes, matched before FastAPI's: the hot path skips
    FastAPI's per-request parameter and dependency solving (what that saves: ``benchmarks/serve.md``). They call
    the same handlers as the documented APIRoutes above, which stay to document the routes in /docs."""
    def endpoint(action: str, store: bool):
        handle = _predict_image(action, store)

        async def fast(request: Request):
            params = request.path_params
            return await handle(request, params["projectId"], params["publishedName"],
                                request.query_params.get("application"))
        return fast
    return [Route(prefix + _path(action, store, source), endpoint(action, store), methods=["POST"],
                  include_in_schema=False)
            for action, store, source in ROUTES if source == "image"]

"""Projects and the domain catalogue: create, read, update, delete, export/import a project, artifacts."""
from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from cvlab import domains as cvdomains
from cvlab.errors import CvlabError

from .. import transfer, wire
from ..bodies import json_body
from ..context import Ctx
from ..schemas import ProjectUpdate
from .common import no_content

router = APIRouter()


@router.get("/domains", tags=["domains"], summary="get_domains")
def get_domains():
    return [wire.domain(d) for d in cvdomains.get_domains()]


@router.get("/domains/{domainId}", tags=["domains"], summary="get_domain")
def get_domain(domainId: str):
    return wire.domain(cvdomains.get_domain(domainId))


@router.get("/projects", tags=["projects"], summary="get_projects")
def get_projects(ctx: Ctx):
    return [wire.project(p) for p in ctx.ws.get_projects()]


@router.post("/projects", tags=["projects"], summary="create_project")
async def create_project(request: Request, ctx: Ctx, name: str = Query(...), description: str | None = Query(None),
                         domainId: str | None = Query(None), classificationType: str | None = Query(None),
                         targetExportPlatforms: str | None = Query(None)):
    # An optional CreateProjectOptions body (Azure storage container / queue URIs) has no local meaning: it is
    # read, so a malformed body still gets a clear error, and otherwise ignored.
    await json_body(request)
    ws = ctx.ws
    platforms = targetExportPlatforms.split(",") if targetExportPlatforms else None
    p = await run_in_threadpool(ws.create_project, name, description or "", domain_id=domainId,
                                classification_type=classificationType, target_export_platforms=platforms)
    return wire.project(p)


@router.get("/projects/{projectId}/export", tags=["projects"], summary="export_project")
def export_project(ctx: Ctx, projectId: str):
    return transfer.export_token(ctx, projectId)


@router.post("/projects/import", tags=["projects"], summary="import_project")
def import_project(ctx: Ctx, token: str = Query(...), name: str | None = None):
    return wire.project(transfer.import_project(ctx, token, name))


@router.get("/projects/{projectId}/artifacts", tags=["projects"], summary="get_artifact",
            response_class=FileResponse)
def get_artifact(ctx: Ctx, projectId: str, path: str = Query(...)):
    """Files of the project's iterations, by path relative to the workspace: ``iterations/<id>/<file>``."""
    ws = ctx.ws
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
def get_project(ctx: Ctx, projectId: str):
    return wire.project(ctx.ws.get_project(projectId))


@router.delete("/projects/{projectId}", tags=["projects"], status_code=204, summary="delete_project")
def delete_project(ctx: Ctx, projectId: str):
    ctx.ws.delete_project(projectId)
    return no_content()


@router.patch("/projects/{projectId}", tags=["projects"], summary="update_project")
def update_project(ctx: Ctx, projectId: str, body: ProjectUpdate):
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
    return wire.project(ctx.ws.update_project(projectId, **kwargs))

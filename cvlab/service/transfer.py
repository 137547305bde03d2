"""Azure's project export/import (``export_project`` -> token, ``import_project(token)``) inside one workspace:
the token names the project and is signed, and importing copies its tags, images, labels and metadata into a
new project. Iterations are not copied (train the copy again): a deliberate, documented difference."""
from __future__ import annotations

import base64
import binascii

from cvlab.errors import CvlabError

_KIND = "project-export"


def export_token(ctx, project_id: str) -> dict:
    ws = ctx.ws
    p = ws.get_project(project_id)
    images = list(ws.iter_images(p.id))
    raw = base64.urlsafe_b64encode(p.id.encode()).decode().rstrip("=")
    return {"iterationCount": len(ws.get_iterations(p.id)), "imageCount": len(images),
            "tagCount": len(ws.get_tags(p.id)), "regionCount": sum(len(i.regions) for i in images),
            "estimatedImportTimeInMS": 20 * len(images) + 100,
            "token": f"{raw}.{ctx.sign(_KIND, p.id, p.id)}"}


def _project_of(ctx, token: str) -> str:
    try:
        raw, sig = token.split(".", 1)
        project_id = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        project_id, sig = "", ""
    if not project_id or not ctx.verify(_KIND, project_id, project_id, sig):
        raise CvlabError("BadRequestInvalidImportToken", "This import token was not issued by this endpoint: get one "
                         "with export_project(project_id) and pass its .token unchanged.")
    return project_id


def import_project(ctx, token: str, name: str | None):
    """The copy of the token's project (``Workspace.copy_project``: all or nothing, even if killed midway)."""
    return ctx.ws.copy_project(_project_of(ctx, token), name)

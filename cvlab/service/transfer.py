"""Azure's project export/import (``export_project`` -> token, ``import_project(token)``) inside one workspace:
the token names the project and is signed, and importing copies its tags, images, labels and metadata into a
new project. Iterations are not copied (train the copy again): a deliberate, documented difference."""
from __future__ import annotations

import base64
import binascii

from cvlab import rules
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
    ws = ctx.ws
    src = ws.get_project(_project_of(ctx, token))
    from cvlab.workspace import ImageEntry

    dst = ws.create_project(name or src.name, src.description, domain_id=src.domain_id,
                            classification_type=src.classification_type,
                            target_export_platforms=src.target_export_platforms)
    try:
        tag_map = {t.id: ws.create_tag(dst.id, t.name, t.description, t.type).id for t in ws.get_tags(src.id)}
        images = list(ws.iter_images(src.id))
        batch = rules.limit("images_per_batch")
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch]
            entries = [ImageEntry(data=ws.read_image_bytes(im), name=im.original_name,
                                  tag_ids=[tag_map[t.tag_id] for t in im.tags],
                                  regions=[{"tag_id": tag_map[r.tag_id], "left": r.left, "top": r.top,
                                            "width": r.width, "height": r.height} for r in im.regions])
                       for im in chunk]
            summary = ws.create_images(dst.id, entries)
            for im, res in zip(chunk, summary.images):
                if res.image is None:
                    raise CvlabError("ErrorProjectImportRequestFailed", f"Image {im.id} could not be copied: "
                                     f"{res.status} {res.message or ''}".strip())
                if im.metadata:
                    ws.update_image_metadata(dst.id, [res.image.id], im.metadata)
    except Exception:
        ws.delete_project(dst.id)  # all or nothing: no half-imported project is left behind
        raise
    return ws.get_project(dst.id)

"""Image bytes behind the ``originalImageUri`` / ``resizedImageUri`` / ``thumbnailUri`` fields.

Like Azure's SAS URLs they carry their own signature, so a browser or ``requests.get`` opens them without a key.
"""
from __future__ import annotations

import io

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response

from cvlab import images as cvimages
from cvlab.errors import CvlabError

from .context import VARIANTS, ctx_of

router = APIRouter(tags=["blobs"])

RESIZED_SIDE = 1024   # Azure's resized copy is for display; cvlab keeps the long side at most 1024 px
THUMBNAIL_SIDE = 256

_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "GIF": "image/gif", "WEBP": "image/webp"}


def _scaled(path, side: int) -> Response:
    img = cvimages.load_rgb(path)
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return Response(buf.getvalue(), media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


@router.get("/blobs/{kind}/{project_id}/{item_id}/{variant}", summary="Image bytes of a stored image")
def get_blob(request: Request, kind: str, project_id: str, item_id: str, variant: str,
             sig: str = Query("", description="signature from the URI the API returned")):
    ctx = ctx_of(request)
    if kind not in ("images", "predictions") or variant not in VARIANTS:
        raise CvlabError("NotFound", f"No blob kind {kind!r} / variant {variant!r}.")
    if not ctx.verify(kind, project_id, item_id, sig):
        raise CvlabError("Forbidden", "The signature of this image URL is wrong: use the URL exactly as the API "
                         "returned it.")
    if kind == "images":
        record = ctx.ws.get_image(project_id, item_id)
        fmt = record.format
    else:
        record = ctx.ws.get_prediction(project_id, item_id)
        fmt = None
    path = ctx.ws.image_path(record)
    if variant == "original":
        return FileResponse(path, media_type=_MIME.get((fmt or "").upper(), "application/octet-stream"))
    return _scaled(path, RESIZED_SIDE if variant == "resized" else THUMBNAIL_SIDE)


@router.get("/exports/{token}.zip", tags=["blobs"], summary="Download an export (the Export's downloadUri)")
def download_export(request: Request, token: str):
    from cvlab.export import export_file
    path = export_file(ctx_of(request).ws, token)
    return FileResponse(path, media_type="application/zip", filename=f"cvlab-export-{token[:8]}.zip")

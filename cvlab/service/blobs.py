"""Image bytes behind the ``originalImageUri`` / ``resizedImageUri`` / ``thumbnailUri`` fields, and export zips
behind an Export's ``downloadUri``.

Like Azure's SAS URLs they carry their own signature, so a browser or ``requests.get`` opens them without a key.
Export links also expire like a SAS URL: ``?se=<UTC expiry>&sig=<HMAC of token and expiry>``, valid for
``CVLAB_EXPORT_LINK_SECONDS`` (default 3600 s, one hour); ``get_exports`` signs a fresh one on every call.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response

from cvlab import images as cvimages
from cvlab.errors import CvlabError

from .context import VARIANTS, ctx_of, settle_stores

router = APIRouter(tags=["blobs"], dependencies=[Depends(settle_stores)])

RESIZED_SIDE = 1024   # Azure's resized copy is for display; cvlab keeps the long side at most 1024 px
THUMBNAIL_SIDE = 256

_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "GIF": "image/gif", "WEBP": "image/webp"}


def _scaled(path, side: int) -> Response:
    """A small copy decoded no larger than needed and cached (``images.scaled_jpeg``)."""
    return Response(cvimages.scaled_jpeg(path, side), media_type="image/jpeg",
                    headers={"Cache-Control": "max-age=3600"})


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


_SE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_EXPORT_KIND = "export-link"  # keeps these signatures apart from image ("images"/"predictions") ones


def export_link(ctx, base_url: str, relative: str, now: datetime | None = None) -> str:
    """The absolute, signed, expiring URL of an export zip the exporter recorded as ``exports/<token>.zip``."""
    token = relative.rsplit("/", 1)[-1].removesuffix(".zip")
    from cvlab.config import settings
    seconds = settings().export_link_seconds
    se = ((now or datetime.now(timezone.utc)) + timedelta(seconds=seconds)).strftime(_SE_FORMAT)
    return f"{base_url.rstrip('/')}/exports/{token}.zip?se={se}&sig={ctx.sign(_EXPORT_KIND, token, se)}"


def _check_export_link(ctx, token: str, se: str, sig: str) -> None:
    if not ctx.verify(_EXPORT_KIND, token, se, sig):  # constant time; also refuses a changed expiry
        raise CvlabError("Forbidden", "This export download link is not valid: use the downloadUri exactly as "
                         "get_exports returned it.")
    try:
        expiry = datetime.strptime(se, _SE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        expiry = datetime.min.replace(tzinfo=timezone.utc)
    if datetime.now(timezone.utc) >= expiry:
        raise CvlabError("Forbidden", f"This export download link expired at {se}: call get_exports again for a "
                         "fresh downloadUri.")


@router.get("/exports/{token}.zip", tags=["blobs"], summary="Download an export (the Export's downloadUri)")
def download_export(request: Request, token: str, se: str = Query("", description="expiry (UTC) of the link"),
                    sig: str = Query("", description="signature from the downloadUri get_exports returned")):
    from cvlab.export import export_file
    ctx = ctx_of(request)
    _check_export_link(ctx, token, se, sig)
    path = export_file(ctx.ws, token)
    return FileResponse(path, media_type="application/zip", filename=f"cvlab-export-{token[:8]}.zip")

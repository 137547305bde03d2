"""Request bodies the SDK sends: multipart ``imageData`` parts (binary, often without a filename), raw
octet-stream, and JSON that may be empty. Parsed here as bytes, never via text form fields.

Every body has a size cap decided by its route before any of it is read (``body_limit``, applied by the gateway
in ``app.py``): a Content-Length above it is refused unread, and a chunked body is counted as it streams in and
refused the moment it passes the cap, so a client can never make the server hold more than the cap."""
from __future__ import annotations

import json
import re

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException

from cvlab import rules
from cvlab.errors import CvlabError

MB = 2**20
MULTIPART_SLACK = 64 * 1024   # part headers and boundaries around each image
JSON_CAP = 32 * MB            # any other body (JSON): far above what a valid request needs
_PREDICT_IMAGE = re.compile(r"^/[^/]+/(classify|detect)/iterations/[^/]+/image(/nostore)?/?$")


class BodyTooLarge(HTTPException):
    """A body over its route's cap: Azure's code, HTTP 413, and ``Connection: close`` (the rest is never read).

    An HTTPException so that FastAPI passes it through unchanged when it is raised while FastAPI reads a body."""

    def __init__(self, code: str, message: str):
        super().__init__(413, message, headers={"Connection": "close"})
        self.code, self.message = code, message


class ImageTooLarge(BodyTooLarge):
    """A raw (not multipart) body holding one image over its size limit (a training upload answers it per image,
    as Azure does)."""


def _image_cap(key: str, images: int = 1) -> tuple[int, str, str]:
    per = rules.limit(key)
    what = f"{images} images of at most {per // MB} MB" if images > 1 else f"one image of at most {per // MB} MB"
    return images * (per + MULTIPART_SLACK), "BadRequestImageSizeBytes", what


def body_limit(api: str | None, rest: str) -> tuple[int, str, str]:
    """(cap in bytes, Azure code, what the cap allows) for a request, from its API and canonical route."""
    batch = rules.limit("images_per_batch")
    if (api == "prediction" and _PREDICT_IMAGE.match(rest)) or \
            (api == "training" and re.match(r"^/projects/[^/]+/quicktest/image/?$", rest)):
        return _image_cap("max_image_bytes_prediction")
    if api == "training" and re.match(r"^/projects/[^/]+/images/?$", rest):
        return _image_cap("max_image_bytes_training", batch)
    if api == "training" and re.match(r"^/projects/[^/]+/images/files/?$", rest):
        per = rules.limit("max_image_bytes_training") * 4 // 3 + MULTIPART_SLACK  # base64 in JSON
        return batch * per, "BadRequestImageSizeBytes", f"{batch} base64 images of at most " \
            f"{rules.limit('max_image_bytes_training') // MB} MB"
    return JSON_CAP, "BadRequestInvalid", f"a request body of at most {JSON_CAP // MB} MB"


def too_large(size: int | None, cap: int, code: str, what: str) -> BodyTooLarge:
    told = f"{size / MB:.1f} MB" if size is not None else f"more than {cap / MB:.1f} MB"
    hint = " Compress or downscale the images, or send fewer per request." if "image" in what else ""
    return BodyTooLarge(code, f"The request body is {told}; this operation takes {what}.{hint}")


def declared_length(headers) -> int | None:
    """Content-Length as an int (None when absent, e.g. chunked, or not a number)."""
    value = headers.get("content-length")
    return int(value) if value and value.strip().isdigit() else None


def limit_receive(receive, cap: int, code: str, what: str):
    """``receive`` that counts body bytes and raises ``BodyTooLarge`` as soon as they pass ``cap``."""
    seen = 0

    async def limited():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                raise too_large(None, cap, code, what)
        return message
    return limited


async def read_body(request: Request, cap: int, code: str, what: str) -> bytes:
    """The body, refused from Content-Length before reading, or as soon as the stream passes ``cap`` (a cap
    tighter than the gateway's, e.g. one raw image)."""
    size = declared_length(request.headers)
    if size is not None and size > cap:
        raise too_large(size, cap, code, what)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise too_large(size, cap, code, what)
    return bytes(body)


def _multipart(body: bytes, content_type: str) -> list[tuple[str | None, bytes]]:
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise CvlabError("BadRequestImageStream", "The multipart body has no boundary in its Content-Type.")
    parts: list[tuple[str | None, bytes]] = []
    state: dict = {}

    def on_part_begin():
        state.update(headers={}, field=b"", value=b"", data=bytearray())

    def on_header_field(data, start, end):
        state["field"] += data[start:end]

    def on_header_value(data, start, end):
        state["value"] += data[start:end]

    def on_header_end():
        state["headers"][state["field"].decode("latin-1").lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_part_data(data, start, end):
        state["data"] += data[start:end]

    def on_part_end():
        disp = state["headers"].get("content-disposition", b"")
        _, opts = parse_options_header(disp)
        name = opts.get(b"filename")
        parts.append((name.decode("utf-8", "replace") if name else None, bytes(state["data"])))

    try:  # a malformed boundary (e.g. longer than 256 bytes) fails already in the constructor
        parser = MultipartParser(boundary, {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                                            "on_header_value": on_header_value, "on_header_end": on_header_end,
                                            "on_part_data": on_part_data, "on_part_end": on_part_end})
        parser.write(body)
        parser.finalize()
    except Exception as exc:
        raise CvlabError("BadRequestImageStream", f"The multipart body could not be read ({exc}).") from None
    return parts


async def image_payloads(request: Request, purpose: str = "prediction") -> list[tuple[str | None, bytes]]:
    """All images in the request, as (file name or None, bytes): multipart parts or one raw body.

    ``purpose`` is "prediction" (one image, 4 MB) or "training" (a batch of images of 6 MB each)."""
    ctype = request.headers.get("content-type", "")
    key = "max_image_bytes_training" if purpose == "training" else "max_image_bytes_prediction"
    if ctype.lower().startswith("multipart/"):
        images = rules.limit("images_per_batch") if purpose == "training" else 1
        parts = _multipart(await read_body(request, *_image_cap(key, images)), ctype)
    else:
        try:
            body = await read_body(request, *_image_cap(key))
        except BodyTooLarge as exc:
            raise ImageTooLarge(exc.code, exc.message) from None
        parts = [(None, body)] if body else []
    if not parts:
        raise CvlabError("BadRequestImageStream", "The request carries no image: send it as multipart form data "
                         "(field imageData) or as a raw application/octet-stream body.")
    return parts


async def json_body(request: Request, required: bool = False):
    """The JSON body, or None when empty (the SDK sends JSON content types with empty bodies)."""
    body = await read_body(request, JSON_CAP, "BadRequestInvalid", f"a JSON body of at most {JSON_CAP // MB} MB")
    if not body.strip():
        if required:
            raise CvlabError("BadRequestRequiredParamIsNull", "The request body is empty: this operation needs a "
                             "JSON body.")
        return None
    try:
        return json.loads(body)
    except ValueError as exc:
        raise CvlabError("BadRequestInvalid", f"The request body is not valid JSON ({exc}).") from None

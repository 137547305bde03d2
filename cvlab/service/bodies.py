"""Request bodies the SDK sends: multipart ``imageData`` parts (binary, often without a filename), raw
octet-stream, and JSON that may be empty. Parsed here as bytes, never via text form fields."""
from __future__ import annotations

import json

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from cvlab.errors import CvlabError


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


async def image_payloads(request: Request) -> list[tuple[str | None, bytes]]:
    """All images in the request, as (file name or None, bytes): multipart parts or one raw body."""
    ctype = request.headers.get("content-type", "")
    body = await request.body()
    if ctype.lower().startswith("multipart/"):
        parts = _multipart(body, ctype)
    elif body:
        parts = [(None, body)]
    else:
        parts = []
    if not parts:
        raise CvlabError("BadRequestImageStream", "The request carries no image: send it as multipart form data "
                         "(field imageData) or as a raw application/octet-stream body.")
    return parts


async def json_body(request: Request, required: bool = False):
    """The JSON body, or None when empty (the SDK sends JSON content types with empty bodies)."""
    body = await request.body()
    if not body.strip():
        if required:
            raise CvlabError("BadRequestRequiredParamIsNull", "The request body is empty: this operation needs a "
                             "JSON body.")
        return None
    try:
        return json.loads(body)
    except ValueError as exc:
        raise CvlabError("BadRequestInvalid", f"The request body is not valid JSON ({exc}).") from None

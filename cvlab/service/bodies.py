"""Request bodies the SDK sends: multipart ``imageData`` parts (binary, often without a filename), raw
octet-stream, and JSON that may be empty. Parsed here as bytes, never via text form fields.

Every body has a size cap decided by its route before any of it is read (``body_limit``, applied by the gateway
in ``app.py``): a Content-Length above it is refused unread, and a chunked body is counted as it streams in and
refused the moment it passes the cap, so a client can never make the server hold more than the cap.

A body's cost to the server is also bounded by what it holds, not only by its size, because validating it runs on
the event loop that serves every seat: a JSON body may hold at most ``MAX_JSON_VALUES`` values and only valid
Unicode (``json_problem``, checked as the body arrives, before any route parses it), and a multipart body at most
``MAX_PARTS`` parts, counted before it is parsed (large ones are parsed off the event loop)."""
from __future__ import annotations

import json
import re

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from cvlab import rules
from cvlab.errors import CvlabError

MB = 2**20
MULTIPART_SLACK = 64 * 1024   # part headers and boundaries around each image
JSON_CAP = 32 * MB            # any other body (JSON): far above what a valid request needs
# cvlab's choice (Azure documents no such limit): far above a valid request (64 images with 20 tags and dozens of
# regions each), far below what makes validation stall the event loop (~10 us per invalid value in FastAPI)
MAX_JSON_VALUES = 20_000
MAX_PARTS = rules.limit("images_per_batch")   # a training upload's 64 images; a prediction sends one
OFF_LOOP_BYTES = 256 * 1024   # bodies larger than this are scanned and parsed in a worker thread
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_PREDICT_IMAGE = re.compile(r"^/[^/]+/(classify|detect)/iterations/[^/]+/image(/nostore)?/?$")


class BodyRefused(HTTPException):
    """A body refused as it arrives, with Azure's code. An HTTPException so that FastAPI passes it through
    unchanged when it is raised while FastAPI reads a body."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(status, message, headers=headers)
        self.code, self.message = code, message


class BodyTooLarge(BodyRefused):
    """A body over its route's cap: HTTP 413 and ``Connection: close`` (the rest is never read)."""

    def __init__(self, code: str, message: str):
        super().__init__(413, code, message, headers={"Connection": "close"})


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
    """``receive`` that counts body bytes and raises ``BodyTooLarge`` as soon as they pass ``cap``, and, for a body
    that is JSON, raises ``BodyRefused`` (400) with its last chunk when ``json_problem`` finds one."""
    seen = 0
    kept: bytearray | None = None  # a copy of a body that starts like JSON, for json_problem

    async def limited():
        nonlocal seen, kept
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if seen == 0 and chunk.lstrip()[:1] in (b"{", b"["):
                kept = bytearray()
            seen += len(chunk)
            if seen > cap:
                raise too_large(None, cap, code, what)
            if kept is not None:
                kept += chunk
                if not message.get("more_body", False):
                    body, kept = bytes(kept), None
                    problem = (await run_in_threadpool(json_problem, body) if len(body) > OFF_LOOP_BYTES
                               else json_problem(body))
                    if problem:
                        raise BodyRefused(400, *problem)
        return message
    return limited


def _too_many_values() -> tuple[str, str]:
    return "BadRequestExceededBatchSize", (
        f"The JSON body holds more than {MAX_JSON_VALUES:,} values; a request may hold at most that many (at most "
        f"{rules.limit('images_per_batch')} images per batch). Send fewer entries per request.")


def json_problem(body: bytes) -> tuple[str, str] | None:
    """(Azure code, message) when a JSON body holds more than ``MAX_JSON_VALUES`` values or text that is not valid
    Unicode; None otherwise, also for a body that is not JSON at all (its route says what is wrong with it).

    The bytes are scanned first (commas and brackets outside strings bound the number of values from both sides;
    a lone surrogate can only come as a ``\\udXXX`` escape, since the raw bytes would not be UTF-8), so a normal
    body is never parsed twice and a body of a million values is refused without being parsed."""
    def most_values(text: bytes) -> int:  # each comma adds a value (and its key), each container itself + 2
        return 2 * text.count(b",") + 3 * (text.count(b"[") + text.count(b"{")) + 1

    surrogate = _SURROGATE_ESCAPE.search(body)
    if most_values(body) <= MAX_JSON_VALUES and not surrogate:
        return None
    structure = _JSON_STRING.sub(b'""', body)  # commas inside strings separate nothing
    if structure.count(b",") >= MAX_JSON_VALUES:  # each comma separates two values: no need to parse to know
        return _too_many_values()
    if most_values(structure) <= MAX_JSON_VALUES and not surrogate:
        return None
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    stack, count = [doc], 0
    while stack:
        value = stack.pop()
        count += 1
        if count > MAX_JSON_VALUES:
            return _too_many_values()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and (problem := rules.unicode_problem(value)):
            return "BadRequestInvalid", f"The JSON body is not valid Unicode: {problem}. Send UTF-8 text."
    return None


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


def _boundary(content_type: str) -> bytes:
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise CvlabError("BadRequestImageStream", "The multipart body has no boundary in its Content-Type.")
    return boundary


def count_parts(body: bytes, boundary: bytes) -> int:
    """How many parts a multipart body delimits (a C-speed byte search, before any parsing)."""
    delimiters = body.count(b"\r\n--" + boundary) + body.startswith(b"--" + boundary)
    return max(0, delimiters - 1)


def _multipart(body: bytes, content_type: str) -> list[tuple[str | None, bytes]]:
    boundary = _boundary(content_type)
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
        parts.append((_part_name(name) if name else None, bytes(state["data"])))

    try:  # a malformed boundary (e.g. longer than 256 bytes) fails already in the constructor
        parser = MultipartParser(boundary, {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                                            "on_header_value": on_header_value, "on_header_end": on_header_end,
                                            "on_part_data": on_part_data, "on_part_end": on_part_end})
        parser.write(body)
        parser.finalize()
    except CvlabError:
        raise
    except Exception as exc:
        raise CvlabError("BadRequestImageStream", f"The multipart body could not be read ({exc}).") from None
    return parts


def _part_name(raw: bytes) -> str:
    """A part's file name: UTF-8 (as browsers and the SDK send it) and valid Unicode, or a 400 before anything is
    stored (it becomes the image's name)."""
    try:
        return rules.check_text(raw.decode("utf-8"), "file name of a multipart part", "BadRequestImageStream")
    except UnicodeDecodeError:
        raise CvlabError("BadRequestImageStream", f"The file name {raw[:80]!r} of a multipart part is not UTF-8: "
                         "send file names as UTF-8 text.") from None


async def _parse_multipart(body: bytes, content_type: str, max_parts: int) -> list[tuple[str | None, bytes]]:
    """Refuse a body with more than ``max_parts`` parts before parsing it; parse a large one off the event loop."""
    parts = count_parts(body, _boundary(content_type))
    if parts > max_parts:
        raise CvlabError("BadRequestExceededBatchSize", f"The multipart body has {parts:,} parts; send at most "
                         f"{max_parts} images per request.")
    if len(body) > OFF_LOOP_BYTES:
        return await run_in_threadpool(_multipart, body, content_type)
    return _multipart(body, content_type)


async def image_payloads(request: Request, purpose: str = "prediction") -> list[tuple[str | None, bytes]]:
    """All images in the request, as (file name or None, bytes): multipart parts or one raw body.

    ``purpose`` is "prediction" (one image, 4 MB) or "training" (a batch of images of 6 MB each)."""
    ctype = request.headers.get("content-type", "")
    key = "max_image_bytes_training" if purpose == "training" else "max_image_bytes_prediction"
    if ctype.lower().startswith("multipart/"):
        images = rules.limit("images_per_batch") if purpose == "training" else 1
        parts = await _parse_multipart(await read_body(request, *_image_cap(key, images)), ctype, MAX_PARTS)
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

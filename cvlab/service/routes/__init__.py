"""The Training API's routes (``/customvision/v3.x/training/...``), one module per resource, exactly as SDK 3.1.1
calls them.

Routes only translate: parse the wire, call the workspace / training / performance / export / active core,
convert the records back with ``wire``. Rules live in the core and arrive here as ``CvlabError``. Every route
gets the caller's context as ``ctx: Ctx`` (a workshop seat's own or the endpoint's).
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Security
from fastapi.security import APIKeyHeader

from ..context import settle_stores
from . import exports, images, iterations, predictions, projects, regions, suggestions, tags

_key_doc = APIKeyHeader(name="Training-Key", auto_error=False, description="the training key `cvlab serve` printed")

#: The whole Training API: the key shows in /docs, and answered predictions are stored before any route runs.
router = APIRouter(dependencies=[Security(_key_doc), Depends(settle_stores)])
for _module in (projects, tags, images, regions, iterations, exports, predictions, suggestions):
    router.include_router(_module.router)

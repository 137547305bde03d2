"""cvlab's local Custom Vision endpoint: the official SDK talks to it unchanged.

>>> handle = start_background(ws)          # doctest: +SKIP  (notebooks: a server thread on a free loopback port)
>>> trainer = CustomVisionTrainingClient(handle.training_endpoint,
...     ApiKeyCredentials(in_headers={"Training-key": handle.training_key}))      # doctest: +SKIP
>>> handle.stop()                          # doctest: +SKIP

Imported lazily (``create_app`` pulls in FastAPI and uvicorn on first use), so the wire codec
(``cvlab.service.wire``) stays light for the core functions that speak Azure's tokens.
"""
from __future__ import annotations

import importlib

_LAZY = {"create_app": "cvlab.service.app", "start_background": "cvlab.service.server",
         "ServiceHandle": "cvlab.service.server"}

__all__ = ["create_app", "start_background", "ServiceHandle"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'cvlab.service' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value

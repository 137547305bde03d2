"""cvlab's local Custom Vision endpoint: the official SDK talks to it unchanged.

>>> handle = start_background(ws)          # notebooks: a server thread on a free loopback port
>>> trainer = CustomVisionTrainingClient(handle.training_endpoint,
...     ApiKeyCredentials(in_headers={"Training-key": handle.training_key}))
>>> handle.stop()
"""
from .app import create_app
from .server import ServiceHandle, start_background

__all__ = ["create_app", "start_background", "ServiceHandle"]

"""cvlab: Azure Custom Vision, re-created on a laptop.

`import cvlab` stays light (no torch, no widgets): heavier parts are imported on first use of their names.
"""
from __future__ import annotations

import importlib

from .errors import CvlabError
from .workspace import ImageEntry, Workspace, open_workspace

__version__ = "0.1.0"

# name -> module that defines it, imported on first access (PEP 562)
_LAZY = {
    "rules": "cvlab.rules",
    "domains": "cvlab.domains",
    "get_domains": "cvlab.domains",
    "get_domain": "cvlab.domains",
    "find_domain": "cvlab.domains",
    "Project": "cvlab.model",
    "Tag": "cvlab.model",
    "Image": "cvlab.model",
    "Iteration": "cvlab.model",
    "ImageCreateSummary": "cvlab.model",
    "train_project": "cvlab.training",
    "get_iteration_performance": "cvlab.performance",
    "Predictor": "cvlab.predict",
}

__all__ = ["CvlabError", "ImageEntry", "Workspace", "open_workspace", "__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cvlab' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if module.rsplit(".", 1)[-1] == name else getattr(mod, name)
    globals()[name] = value
    return value

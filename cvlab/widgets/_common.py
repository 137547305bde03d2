"""Plumbing shared by the widgets: finding the workspace and project, picture bytes, messages, text fallback.

Widgets stay thin: every rule lives in the Workspace; here we only turn its `CvlabError`s into readable lines.
"""
from __future__ import annotations

import functools
import html
import io
from collections import OrderedDict
from typing import Any

import ipywidgets as w
from PIL import Image as PILImage

from cvlab.errors import CvlabError

# The colours of matplotlib's tab10, which the box widget also uses: one per tag.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
SUGGESTION_COLOUR = "#9e9e9e"


def resolve(project: Any, ws: Any = None):
    """(workspace, fresh Project record) from a Project record, a project id or a project name.

    A Project handed out by the Workspace carries it; otherwise the workspace comes from `cvlab.open_workspace()`
    (``cvlab.config``: $CVLAB_WORKSPACE, else the default folder).
    """
    if ws is None:
        ws = getattr(project, "_ws", None)  # set by Workspace on the Project records it returns
    if ws is None:
        from cvlab.workspace import open_workspace

        ws = open_workspace()
    return ws, ws.resolve_project(project)


def find_iteration(ws, project_id: str, iteration: Any):
    """An Iteration from a record, an id or a name (None: the most recently trained one, ``ws.latest_iteration``);
    a clear error when there is no such iteration."""
    if iteration is None:
        it = ws.latest_iteration(project_id)
        if it is None:
            raise CvlabError("NotFoundIteration", "This project has no trained iteration yet: train one "
                             "(cvlab.train_project or the Train button) and try again.")
        return it
    key = getattr(iteration, "id", iteration)
    for it in ws.get_iterations(project_id):
        if key in (it.id, it.name):
            return it
    raise CvlabError("NotFoundIteration", f"Iteration {key!r} is not in this project: pick one of "
                     f"{[it.name for it in ws.get_iterations(project_id)]}.")


def jpeg(img: PILImage.Image, max_size: tuple[int, int]) -> bytes:
    """A downscaled JPEG copy for display (the browser never receives the full-size original)."""
    small = img.convert("RGB")
    small.thumbnail(max_size, PILImage.Resampling.BILINEAR)
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def guarded(handler):
    """A button/key/trait handler whose CvlabError lands on the widget's status line, not in a hidden log."""
    @functools.wraps(handler)
    def run(self, *args, **kwargs):
        try:
            return handler(self, *args, **kwargs)
        except CvlabError as err:
            self.status.error(err)
    return run


class Thumbnails:
    """Display copies of images, the most recent `size` kept (a long labeling session stays small)."""

    def __init__(self, ws, size: int = 64):
        self.ws, self.size, self._cache = ws, size, OrderedDict()

    def get(self, image, max_size: tuple[int, int]) -> bytes:
        key = (image.sha256, max_size)
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            self._cache[key] = jpeg(self.ws.open_image(image), max_size)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return self._cache[key]


class StatusLine(w.HTML):
    """One line under a widget: what just happened, or what to fix (a CvlabError's message)."""

    def info(self, text: str) -> None:
        self.value = f"<span style='color:#2e7d32'>{html.escape(text)}</span>"

    def error(self, err: Exception) -> None:
        if isinstance(err, CvlabError):
            text = f"{html.escape(err.message)} <small style='color:#888'>({html.escape(err.code)})</small>"
        else:
            text = html.escape(f"{type(err).__name__}: {err}")
        self.value = f"<span style='color:#c62828'>⚠ {text}</span>"

    def clear(self) -> None:
        self.value = ""

    @property
    def text(self) -> str:
        """The message without markup (what tests and the text fallback read)."""
        import re

        return html.unescape(re.sub(r"<[^>]+>", "", self.value))


class TextFallback:
    """Where widgets cannot render (nbconvert, a terminal) the text/plain says what to do instead."""

    _needs = "This widget"

    def fallback_text(self) -> str:
        return (f"{self._needs} needs JupyterLab (it is an interactive widget): run `make lab` (or `cvlab lab`), "
                "open this notebook there and run the cell again.")

    def __repr__(self) -> str:
        return self.fallback_text()

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        if isinstance(bundle, tuple):  # (data, metadata), as anywidget returns it
            data, metadata = bundle
            return {**data, "text/plain": self.fallback_text()}, metadata
        bundle["text/plain"] = self.fallback_text()
        return bundle

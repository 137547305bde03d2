"""Box labeler for object detection projects: the portal's region editor (``cvlab/portal/static/js/regions.js``)
in a notebook, through anywidget, so both faces label the same way.

Drag to draw a box anywhere, also inside or over another box (a helmet inside a person); moving or resizing a
box needs it selected first (click it), so a stray drag never moves one; Shift+drag always draws. Every change
(draw, tag, move, resize, delete, accept, undo, redo) saves the image's boxes at once with
``Workspace.set_image_labels``; undo and redo cover every change made to the image shown. One navigation bar;
the classes are the project's own tags (a new one can be typed in the tag list). With a trained iteration, its
boxes are shown dashed as suggestions (the smart labeler's ``suggest_tags_and_regions``): click to accept, × to
reject. Images without boxes come first.
"""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import anywidget
import traitlets as t
from PIL import Image as PILImage
from PIL import ImageOps

from cvlab.errors import CvlabError

from ._common import TextFallback, find_iteration, jpeg, resolve

REGIONS_JS = Path(__file__).resolve().parent.parent / "portal" / "static" / "js" / "regions.js"
WRAPPER_JS = Path(__file__).with_name("static") / "box_labeler.js"
DISPLAY = (900, 600)   # the picture sent to the browser is at most this big (boxes are fractions, so any size)


def _overlap(a: dict, b) -> float:
    """Intersection over union of a suggestion (dict) and a saved region (record)."""
    ax1, ay1 = a["left"] + a["width"], a["top"] + a["height"]
    bx1, by1 = b.left + b.width, b.top + b.height
    iw, ih = max(0.0, min(ax1, bx1) - max(a["left"], b.left)), max(0.0, min(ay1, by1) - max(a["top"], b.top))
    inter = iw * ih
    union = a["width"] * a["height"] + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


class BoxLabeler(TextFallback, anywidget.AnyWidget):
    """Label a detection project's images with boxes (see the module docstring); ``iteration`` picks the
    suggestions' iteration (default: the latest trained one; ``suggestions=False`` for none)."""

    _esm = REGIONS_JS.read_text(encoding="utf-8") + "\n" + WRAPPER_JS.read_text(encoding="utf-8")
    _needs = "This box labeler"

    project_name = t.Unicode("").tag(sync=True)
    image = t.Dict().tag(sync=True)             # {"src": data URL, "name", "id"}
    regions = t.List().tag(sync=True)           # the shown image's saved boxes, when it is shown
    tags = t.List().tag(sync=True)              # the project's regular tags: [{"id", "name"}]
    suggestions = t.List().tag(sync=True)
    has_iteration = t.Bool(False).tag(sync=True)
    threshold = t.Float(0.5).tag(sync=True)
    position = t.Dict().tag(sync=True)          # {"index", "total", "labelled", "unlabelled"}
    status = t.Dict().tag(sync=True)            # {"text", "error"}

    def __init__(self, ws, project, *, iteration: Any = None, suggestions: bool = True, threshold: float = 0.5):
        if project.project_type != "ObjectDetection":
            raise CvlabError("BadRequestOperationNotSupported",
                             f"Project {project.name!r} is a classification project: label it with "
                             "project.tagger() (whole-image tags); the box labeler is for object detection.")
        super().__init__(project_name=project.name, threshold=threshold)
        self.ws, self.project = ws, project
        self._iteration = None
        if suggestions:
            self._iteration = (find_iteration(ws, project.id, iteration) if iteration is not None
                               else ws.latest_iteration(project.id))
        self.has_iteration = self._iteration is not None
        self._predictions: dict[str, list[dict]] = {}
        self._rejected: dict[str, list[dict]] = {}
        empty = list(ws.iter_images(project.id, tagging_status="Untagged"))
        labelled = list(ws.iter_images(project.id, tagging_status="Tagged"))
        self.order: list[str] = [im.id for im in empty] + [im.id for im in labelled]
        self.index = 0
        self.on_msg(self._on_message)
        self.observe(lambda _c: self._suggest(), names=["threshold"])
        self.go(0)

    # ---- navigation ----------------------------------------------------------------------------------------
    @property
    def image_id(self) -> str | None:
        return self.order[self.index] if self.order else None

    def _tags(self):
        return [tag for tag in self.ws.get_tags(self.project.id) if tag.type == "Regular"]

    def go(self, index: int) -> None:
        """Show the image at `index` (clamped) with its saved boxes and the suggestions for it."""
        try:
            self._show(index)
        except CvlabError as err:
            self._say(err)

    def _show(self, index: int) -> None:
        tags = self._tags()
        if not self.order:
            with self.hold_sync():
                self.tags = [{"id": tag.id, "name": tag.name} for tag in tags]
                self.image, self.regions, self.suggestions = {}, [], []
                self._position()
            return self._say("No images yet: add some with project.add_images(...).")
        self.index = max(0, min(index, len(self.order) - 1))
        try:
            image = self.ws.get_image(self.project.id, self.image_id)
        except CvlabError as err:
            if err.code != "NotFoundImage":
                raise
            self.order.pop(self.index)  # deleted elsewhere (another notebook, the REST API): skip it
            return self._show(self.index)
        picture = ImageOps.contain(self.ws.open_image(image), DISPLAY, PILImage.Resampling.BILINEAR)
        src = "data:image/jpeg;base64," + base64.b64encode(jpeg(picture, picture.size)).decode()
        with self.hold_sync():
            self.tags = [{"id": tag.id, "name": tag.name} for tag in tags]
            self.regions = [{"id": r.region_id, "tagId": r.tag_id, "tagName": r.tag_name, "left": r.left,
                             "top": r.top, "width": r.width, "height": r.height} for r in image.regions]
            self.suggestions = self._suggestions_for(image)
            self.image = {"src": src, "name": image.original_name or image.id, "id": image.id}
            self._position()
        if not tags:
            self._say(CvlabError("NotFoundTag", "This project has no tags yet: type a name in the tag list after "
                                 "drawing a box, or create one with ws.create_tag(project.id, 'helmet')."))

    def next_unlabelled(self) -> None:
        untagged = {im.id for im in self.ws.iter_images(self.project.id, tagging_status="Untagged")}
        for step in range(1, len(self.order) + 1):
            i = (self.index + step) % len(self.order)
            if self.order[i] in untagged:
                return self.go(i)
        self._say("Every image has boxes.")

    def _position(self) -> None:
        labelled = self.ws.get_image_count(self.project.id, tagging_status="Tagged")
        self.position = {"index": self.index, "total": len(self.order), "labelled": labelled,
                         "unlabelled": self.ws.get_image_count(self.project.id, tagging_status="Untagged")}

    # ---- suggestions (smart labeler) -----------------------------------------------------------------------
    def _suggestions_for(self, image) -> list[dict]:
        if self._iteration is None:
            return []
        if image.id not in self._predictions:
            from cvlab.active import suggest_tags_and_regions

            found = suggest_tags_and_regions(self.ws, self.project.id, self._iteration.id, [image.id])
            self._predictions[image.id] = found[0].predictions
        names = {tag.name: tag.id for tag in self._tags()}
        rejected = self._rejected.get(image.id, [])
        out = []
        for p in self._predictions[image.id]:
            bb = p.get("bounding_box")
            if not bb or p["probability"] < self.threshold or p["tag_name"] not in names:
                continue
            box = {"tagId": names[p["tag_name"]], "tagName": p["tag_name"], "probability": round(p["probability"], 3),
                   **{k: float(bb[k]) for k in ("left", "top", "width", "height")}}
            same = lambda r: r.tag_id == box["tagId"] and _overlap(box, r) > 0.7  # noqa: E731
            if any(same(r) for r in image.regions) or any(
                    all(abs(box[k] - x[k]) < 1e-6 for k in ("left", "top", "width", "height")) for x in rejected):
                continue  # already drawn, or rejected before
            out.append(box)
        return out

    def _suggest(self) -> None:
        if self.image_id is not None and self._iteration is not None:
            self.suggestions = self._suggestions_for(self.ws.get_image(self.project.id, self.image_id))

    def pending_suggestions(self) -> list[dict]:
        """The suggestions still shown for this image (not accepted, not rejected)."""
        return list(self.suggestions)

    # ---- messages from the browser --------------------------------------------------------------------------
    def _on_message(self, _widget, msg: dict, _buffers) -> None:
        kind = msg.get("kind")
        try:
            if kind == "change":
                self.save(msg.get("regions", []), msg.get("reason", "change"))
            elif kind == "go":
                {"previous": lambda: self.go(self.index - 1), "next": lambda: self.go(self.index + 1),
                 "unlabelled": self.next_unlabelled}[msg["to"]]()
            elif kind == "create_tag":
                tag = self.ws.create_tag(self.project.id, str(msg.get("name", "")).strip())
                self.tags = [{"id": x.id, "name": x.name} for x in self._tags()]
                self.send({"kind": "tag_created", "request": msg.get("request"), "tag": {"id": tag.id,
                                                                                           "name": tag.name}})
                self._say(f"Created tag {tag.name}.")
            elif kind == "reject":
                s = msg.get("suggestion", {})
                self._rejected.setdefault(self.image_id, []).append({k: float(s.get(k, 0)) for k in
                                                                      ("left", "top", "width", "height")})
                self.suggestions = [x for x in self.suggestions if not all(
                    abs(x[k] - float(s.get(k, -1))) < 1e-6 for k in ("left", "top", "width", "height"))]
                self._say("Suggestion rejected.")
        except CvlabError as err:
            if kind == "create_tag":
                self.send({"kind": "tag_refused", "request": msg.get("request"), "message": err.message})
            self._say(err)

    def save(self, regions: list[dict], reason: str = "change") -> None:
        """Replace the shown image's boxes with `regions` ({tag_id, left, top, width, height} fractions)."""
        if self.image_id is None:
            return
        clean = [{"tag_id": r["tag_id"], **{k: float(r[k]) for k in ("left", "top", "width", "height")}}
                 for r in regions]
        self.ws.set_image_labels(self.project.id, self.image_id, regions=clean)
        if reason == "accept":
            self.suggestions = [s for s in self.suggestions if not any(
                all(abs(s[k] - r[k]) < 1e-6 for k in ("left", "top", "width", "height")) for r in clean)]
        self._position()
        words = {"draw": "Box added", "accept": "Suggestion accepted", "delete": "Box deleted", "move": "Box moved",
                 "resize": "Box resized", "undo": "Undone", "redo": "Redone", "tag": "Tag changed"}
        self._say(f"{words.get(reason, 'Saved')}: {len(clean)} box{'es' if len(clean) != 1 else ''} saved.")

    def undo(self) -> None:
        """Undo the last change in the browser's history (the Undo button)."""
        self.send({"kind": "undo"})

    def redo(self) -> None:
        self.send({"kind": "redo"})

    def _say(self, message) -> None:
        if isinstance(message, CvlabError):
            self.status = {"text": f"⚠ {message.message} ({message.code})", "error": True}
        else:
            self.status = {"text": str(message), "error": False}

    def fallback_text(self) -> str:
        done = self.ws.get_image_count(self.project.id, tagging_status="Tagged")
        return (super().fallback_text() + f" Progress so far: {done} of {len(self.order)} images have boxes. "
                "Without widgets, add boxes in code: ws.set_image_labels(project.id, image.id, regions=[{'tag_id': "
                "tag.id, 'left': 0.1, 'top': 0.2, 'width': 0.3, 'height': 0.4}]).")


def box_labeler(project, ws=None, **kwargs) -> BoxLabeler:
    """`project.box_labeler()`: the box labeler for an object detection project (a Project, its id or name)."""
    ws, project = resolve(project, ws)
    return BoxLabeler(ws, project, **kwargs)

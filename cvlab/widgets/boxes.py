"""Box labeler for object detection projects, built on jupyter-bbox-widget, with smart-labeler suggestions.

Draw, move, resize and delete boxes and pick their tag in `BBoxWidget` (its own keys: 1-9 pick a tag, Tab
select a box, Delete remove it, C give it the current tag, W/A/S/D move, Q/E/R/F resize, Enter next image,
Space skip). Every change to the boxes is saved at once with `Workspace.set_image_labels` as normalised
left/top/width/height. When the project has a trained iteration, an image without regions opens with that
iteration's boxes as grey *suggestions*: accept them (they take the tag's colour and are saved) or reject them.
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
from jupyter_bbox_widget import BBoxWidget
from PIL import Image as PILImage
from PIL import ImageOps

from cvlab.errors import CvlabError

from ._common import PALETTE, SUGGESTION_COLOUR, StatusLine, TextFallback, find_iteration, guarded, jpeg, \
    resolve

SUFFIX = " (suggested)"


def to_region(box: dict, size: tuple[int, int], tag_id: str) -> dict | None:
    """A widget box (pixels of the picture it shows) as a normalised region, clipped to the image; None if empty."""
    iw, ih = size
    x0, y0 = max(0.0, float(box["x"])), max(0.0, float(box["y"]))
    x1, y1 = min(float(iw), float(box["x"]) + float(box["width"])), min(float(ih), float(box["y"]) + float(box["height"]))
    if x1 - x0 < 1 or y1 - y0 < 1:  # a click without a drag, or a box dragged off the picture
        return None
    return {"tag_id": tag_id, "left": x0 / iw, "top": y0 / ih, "width": (x1 - x0) / iw, "height": (y1 - y0) / ih}


def to_box(left: float, top: float, width: float, height: float, size: tuple[int, int], label: str) -> dict:
    """A normalised region as a widget box in pixels of the shown picture."""
    iw, ih = size
    return {"x": round(left * iw), "y": round(top * ih), "width": round(width * iw), "height": round(height * ih),
            "label": label}


class BoxLabeler(TextFallback, w.VBox):
    """Label a detection project's images with boxes; regionless images first, suggestions from the latest
    trained iteration (unless `suggestions=False`). Pictures are shown scaled to fit `size` (600x400)."""

    _needs = "This box labeler"

    def __init__(self, ws, project, *, iteration: Any = None, suggestions: bool = True, threshold: float = 0.5,
                 size: tuple[int, int] = (600, 400)):
        if project.project_type != "ObjectDetection":
            raise CvlabError("BadRequestOperationNotSupported",
                             f"Project {project.name!r} is a classification project: label it with "
                             "project.tagger() (whole-image tags); the box labeler is for object detection.")
        self.ws, self.project = ws, project
        self._display = size
        self._iteration = None
        if suggestions:
            self._iteration = (find_iteration(ws, project.id, iteration) if iteration is not None
                               else ws.latest_iteration(project.id))
        self._predictions: dict[str, list[dict]] = {}
        self._loading = False
        self._saved: list[tuple] | None = None
        empty = list(ws.iter_images(project.id, tagging_status="Untagged"))
        labelled = list(ws.iter_images(project.id, tagging_status="Tagged"))
        self.order: list[str] = [im.id for im in empty] + [im.id for im in labelled]
        self.index = 0
        self.size = (1, 1)  # pixel size of the picture the box widget shows

        self.bbox = BBoxWidget(hide_buttons=False)
        self.bbox.add_class("cvlab-bbox")
        self.bbox.on_submit(lambda: self.go(self.index + 1))
        self.bbox.on_skip(lambda: self.go(self.index + 1))
        self.bbox.observe(self._on_boxes, names=["bboxes"])
        self.bbox.observe(self._on_label, names=["label"])
        self.progress = w.HTML()
        self.status = StatusLine()
        self.prev_button = w.Button(description="◀ Previous")
        self.next_button = w.Button(description="Next ▶")
        self.prev_button.on_click(lambda _b: self.go(self.index - 1))
        self.next_button.on_click(lambda _b: self.go(self.index + 1))
        self.accept_button = w.Button(description="Accept selected", tooltip="Keep the selected suggestion")
        self.reject_button = w.Button(description="Reject selected", tooltip="Drop the selected suggestion")
        self.accept_all_button = w.Button(description="Accept all", button_style="success")
        self.reject_all_button = w.Button(description="Reject all", button_style="warning")
        self.accept_button.on_click(lambda _b: self.accept(self.bbox.selected_index))
        self.reject_button.on_click(lambda _b: self.reject(self.bbox.selected_index))
        self.accept_all_button.on_click(lambda _b: self.accept_all())
        self.reject_all_button.on_click(lambda _b: self.reject_all())
        self.threshold = w.FloatSlider(value=threshold, min=0.05, max=0.95, step=0.05, description="Suggest ≥",
                                       readout_format=".0%", continuous_update=False)
        self.threshold.observe(lambda _c: self._resuggest(), names=["value"])
        source = (f"suggestions from iteration <b>{html.escape(self._iteration.name)}</b> in grey"
                  if self._iteration is not None else "no trained iteration yet: no suggestions")
        self.suggest_bar = w.HBox([self.accept_button, self.reject_button, self.accept_all_button,
                                   self.reject_all_button, self.threshold])
        self.suggest_bar.layout.display = None if self._iteration is not None else "none"
        super().__init__([w.HTML(f"<b>Box labeling</b> {html.escape(project.name)} <small>({source})</small>"), self.progress,
                          self.bbox, w.HBox([self.prev_button, self.next_button]), self.suggest_bar, self.status])
        self.add_class("cvlab-box-labeler")
        self.go(0)

    # ---- navigation and display --------------------------------------------------------------------------
    @property
    def image_id(self) -> str | None:
        return self.order[self.index] if self.order else None

    def _tags(self):
        return [t for t in self.ws.get_tags(self.project.id) if t.type == "Regular"]

    @guarded
    def go(self, index: int) -> None:
        """Show the image at `index` (clamped) with its saved regions, or suggestions when it has none."""
        tags = self._tags()
        self._loading = True
        try:
            names = [t.name for t in tags]
            grey = [n + SUFFIX for n in names] if self._iteration is not None else []  # only with suggestions
            self.bbox.classes = names + grey
            self.bbox.colors = [PALETTE[i % len(PALETTE)] for i in range(len(names))] + [SUGGESTION_COLOUR] * len(grey)
            if not self.order:
                self.progress.value = "No images yet: add some with project.add_images(...)."
                self.bbox.bboxes = []
                return
            if not tags:
                self.status.error(CvlabError("NotFoundTag", "This project has no tags: create one first, e.g. "
                                             "project.create_tag('helmet'), then run this cell again."))
            self.index = max(0, min(index, len(self.order) - 1))
            try:
                image = self.ws.get_image(self.project.id, self.image_id)
            except CvlabError as err:
                if err.code != "NotFoundImage":
                    raise
                self.order.pop(self.index)  # deleted elsewhere: skip it
                self.status.info("That image was deleted meanwhile; showing the next one.")
                self._loading = False
                return self.go(self.index)
            picture = self.ws.open_image(image)
            # Scaled (up or down) to fit the display box: boxes are drawn in these pixels, then normalised by them.
            picture = ImageOps.contain(picture, self._display, PILImage.Resampling.BILINEAR)
            data = jpeg(picture, picture.size)
            self.size = picture.size
            boxes = [to_box(r.left, r.top, r.width, r.height, self.size, r.tag_name) for r in image.regions]
            self._saved = self._key(image.regions)
            if not boxes:
                boxes = self._suggestions(image)
            self.bbox.selected_index = -1
            self.bbox.image_bytes = data
            self.bbox.bboxes = boxes
            done = self.ws.get_image_count(self.project.id, tagging_status="Tagged")
            self.progress.value = (f"<b>{done}</b> of {len(self.order)} images have boxes · image "
                                   f"{self.index + 1} of {len(self.order)} · {html.escape(image.original_name or image.id)}")
            self.prev_button.disabled = self.index == 0
            self.next_button.disabled = self.index >= len(self.order) - 1
        finally:
            self._loading = False

    # ---- suggestions (smart labeler) ---------------------------------------------------------------------
    def _suggestions(self, image) -> list[dict]:
        if self._iteration is None:
            return []
        if image.id not in self._predictions:
            try:  # the smart labeler's own API: shares its per-iteration cache with the REST service
                from cvlab.active import suggest_tags_and_regions

                found = suggest_tags_and_regions(self.ws, self.project.id, self._iteration.id, [image.id])
                self._predictions[image.id] = found[0].predictions
            except CvlabError as err:
                self.status.error(err)
                self._iteration = None
                return []
        names = {t.name for t in self._tags()}
        out = []
        for p in self._predictions[image.id]:
            bb = p.get("bounding_box")
            if bb and p["probability"] >= self.threshold.value and p["tag_name"] in names:
                box = to_box(bb["left"], bb["top"], bb["width"], bb["height"], self.size, p["tag_name"] + SUFFIX)
                box["probability"] = round(float(p["probability"]), 4)
                out.append(box)
        return out

    @guarded
    def _resuggest(self) -> None:
        """New threshold: keep the real boxes, redo the suggestions."""
        if self.image_id is None or self._iteration is None:
            return
        image = self.ws.get_image(self.project.id, self.image_id)
        if image.regions:
            return
        real = [b for b in self.bbox.bboxes if not b["label"].endswith(SUFFIX)]
        self.bbox.selected_index = -1
        self.bbox.bboxes = real + self._suggestions(image)

    def suggestions(self) -> list[dict]:
        """The boxes still waiting to be accepted or rejected."""
        return [b for b in self.bbox.bboxes if b["label"].endswith(SUFFIX)]

    @guarded
    def accept(self, index: int) -> None:
        """Turn the suggestion at `index` into a real box of its tag (saved at once)."""
        boxes = [dict(b) for b in self.bbox.bboxes]
        if not 0 <= index < len(boxes) or not boxes[index]["label"].endswith(SUFFIX):
            self.status.info("Select a grey suggested box first (click it, or Tab through the boxes).")
            return
        boxes[index]["label"] = boxes[index]["label"][: -len(SUFFIX)]
        boxes[index].pop("probability", None)
        self.bbox.bboxes = boxes

    @guarded
    def reject(self, index: int) -> None:
        boxes = list(self.bbox.bboxes)
        if not 0 <= index < len(boxes) or not boxes[index]["label"].endswith(SUFFIX):
            self.status.info("Select a grey suggested box first (click it, or Tab through the boxes).")
            return
        self.bbox.selected_index = -1
        self.bbox.bboxes = boxes[:index] + boxes[index + 1:]

    @guarded
    def accept_all(self) -> None:
        boxes = []
        for b in self.bbox.bboxes:
            b = dict(b)
            if b["label"].endswith(SUFFIX):
                b["label"] = b["label"][: -len(SUFFIX)]
                b.pop("probability", None)
            boxes.append(b)
        self.bbox.bboxes = boxes

    @guarded
    def reject_all(self) -> None:
        self.bbox.selected_index = -1
        self.bbox.bboxes = [b for b in self.bbox.bboxes if not b["label"].endswith(SUFFIX)]

    # ---- saving ------------------------------------------------------------------------------------------
    def _on_label(self, change) -> None:
        """Picking a grey suggestion class draws with its real tag: suggestions only come from the model."""
        if change["new"].endswith(SUFFIX):
            self.bbox.label = change["new"][: -len(SUFFIX)]

    @staticmethod
    def _key(regions) -> list[tuple]:
        def get(r, k):
            return r[k] if isinstance(r, dict) else getattr(r, k)

        return sorted((get(r, "tag_id"), *(round(get(r, k), 4) for k in ("left", "top", "width", "height")))
                      for r in regions)

    def regions(self) -> list[dict]:
        """The accepted boxes as normalised regions (what gets saved)."""
        by_name = {t.name: t.id for t in self._tags()}
        out = []
        for b in self.bbox.bboxes:
            if b["label"] in by_name:
                r = to_region(b, self.size, by_name[b["label"]])
                if r is not None:
                    out.append(r)
        return out

    def _on_boxes(self, _change) -> None:
        if self._loading or self.image_id is None:
            return
        regions = self.regions()
        if self._key(regions) == self._saved:
            return  # only suggestions moved, or nothing changed
        try:
            self.ws.set_image_labels(self.project.id, self.image_id, regions=regions)
        except CvlabError as err:
            self.status.error(err)
            return
        self._saved = self._key(regions)
        self.status.info(f"Saved {len(regions)} box{'es' if len(regions) != 1 else ''}.")

    def fallback_text(self) -> str:
        done = self.ws.get_image_count(self.project.id, tagging_status="Tagged")
        return (super().fallback_text() + f" Progress so far: {done} of {len(self.order)} images have boxes. "
                "Without widgets, add boxes in code: ws.set_image_labels(project.id, image.id, regions=[{'tag_id': "
                "tag.id, 'left': 0.1, 'top': 0.2, 'width': 0.3, 'height': 0.4}]).")


def box_labeler(project, ws=None, **kwargs) -> BoxLabeler:
    """`project.box_labeler()`: the box labeler for an object detection project (a Project, its id or name)."""
    ws, project = resolve(project, ws)
    return BoxLabeler(ws, project, **kwargs)

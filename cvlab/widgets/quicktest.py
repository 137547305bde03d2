"""Quick test: one image (uploaded or picked) through a trained iteration, as the portal's Quick Test does.

Classification shows one bar per tag; detection draws the boxes on the picture. The threshold slider only
changes what is shown, never the model's output. Like Azure's quick test the result is stored as a prediction
(``store=False`` to keep it out of the Predictions list), so it can feed active learning later.

"Add to training" turns a stored quick test into a training image in one call
(``cvlab.active.add_predictions_to_training``, the same one the REST route uses): the model's answer at the
threshold is pre-filled (classification: the top tag, or in a multilabel project every tag at or above the
threshold; detection: the boxes at or above the threshold, editable as in the box labeler) and the learner
corrects it first. Moving the threshold proposes again, so correct the labels last.
"""
from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import ipywidgets as w
from jupyter_bbox_widget import BBoxWidget
from PIL import Image as PILImage
from PIL import ImageDraw, ImageOps

from cvlab import images as cv_images
from cvlab.errors import CvlabError

from ._common import PALETTE, StatusLine, TextFallback, find_iteration, guarded, jpeg, resolve



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


APPLICATION = "QuickTest"


class QuickTest(TextFallback, w.VBox):
    """Upload an image or pick a sample, choose an iteration, read its predictions above a threshold."""

    _needs = "This quick test"

    def __init__(self, ws, project, iteration: Any = None, *, samples=(), threshold: float = 0.5,
                 store: bool = True, size: tuple[int, int] = (600, 400)):
        self.ws, self.project, self.store, self._size = ws, project, store, size
        self._predictors: dict[str, Any] = {}
        self.result: list[dict] = []
        self._picture = None
        iterations = [it for it in ws.get_iterations(project.id) if it.status == "Completed"]
        chosen = find_iteration(ws, project.id, iteration) if iterations or iteration is not None else None
        self.iteration = w.Dropdown(description="Iteration", options=[(it.name, it.id) for it in iterations],
                                    value=chosen.id if chosen else None)
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="Upload image")
        self._samples = self._sample_options(samples)
        # "" (not None) for "no sample": a Dropdown shows the value None as a blank box
        self.sample = w.Dropdown(description="or sample", options=[("— pick one —", "")] +
                                 [(n, n) for n in self._samples], value="")
        self.threshold = w.FloatSlider(value=threshold, min=0.0, max=1.0, step=0.01, description="Threshold",
                                       readout_format=".0%")
        self.picture = w.Image(format="jpeg", layout=w.Layout(max_width=f"{size[0]}px", max_height=f"{size[1]}px",
                                                              object_fit="contain"))
        self.picture.layout.display = "none"  # until there is something to show (no broken-image icon)
        self.bars = w.VBox()
        self.status = StatusLine()
        self.upload.observe(self._on_upload, names=["value"])
        self.sample.observe(self._on_sample, names=["value"])
        self.iteration.observe(lambda _c: self._rerun(), names=["value"])
        self.threshold.observe(self._on_threshold, names=["value"])
        self._last: tuple[bytes, str] | None = None
        self._build_add_panel()
        if chosen is None:
            self.status.error(CvlabError("NotFoundIteration", "This project has no trained iteration yet: train "
                                         "one (project.train()) and run this cell again."))
        super().__init__([w.HTML(f"<b>Quick test</b> {html.escape(project.name)}"), self.iteration,
                          w.HBox([self.upload, self.sample]), self.threshold, self.picture, self.bars,
                          self.add_panel, self.status])
        self.add_class("cvlab-quick-test")

    def _sample_options(self, samples) -> dict[str, Any]:
        """Sample name -> a path, or a project Image (given ones, e.g. held-out images, then the first few training
        images)."""
        out: dict[str, Any] = {}
        for p in samples:
            if hasattr(p, "sha256"):  # an Image record of the project
                out[f"{'held out' if p.metadata.get('holdout') == 'true' else 'project'}: "
                    f"{p.original_name or p.id[:8]}"] = p
            else:
                out[Path(p).name] = Path(p)
        for im in self.ws.get_images(self.project.id, take=20):
            out[f"project: {im.original_name or im.id[:8]}"] = im
        return out

    # ---- running the model -------------------------------------------------------------------------------
    def test(self, data: bytes, name: str | None = None) -> list[dict]:
        """Predict `data` (image bytes) with the chosen iteration, show it, return the predictions."""
        self._last = (bytes(data), name or "image")
        return self._rerun()

    def _rerun(self) -> list[dict]:
        if self._last is None:
            return []
        data, name = self._last
        try:
            if self.iteration.value is None:
                raise CvlabError("NotFoundIteration", "Choose a trained iteration first.")
            cv_images.inspect_image(data, "prediction", name)
            self._picture = cv_images.load_rgb(data)
            predictor = self._predictor(self.iteration.value)
            self.result = predictor.predict(self._picture)
            self.stored = None
            if self.store:
                self.stored = self.ws.store_prediction(self.project.id, self.iteration.value, data, self.result,
                                                       application=APPLICATION)
        except CvlabError as err:
            self.result, self._picture, self.stored = [], None, None
            self.picture.value = b""
            self.picture.layout.display = "none"
            self.bars.children = ()
            self._propose()
            self.status.error(err)
            return []
        self.status.info(f"{name}: {len(self.result)} predictions from {self.iteration.label}.")
        self._render()
        self._propose()
        return self.result

    def _predictor(self, iteration_id: str):
        if iteration_id not in self._predictors:
            from cvlab.predict import Predictor

            self._predictors[iteration_id] = Predictor.load(self.ws, iteration_id)
        return self._predictors[iteration_id]

    def _on_upload(self, change) -> None:
        files = change["new"]
        if files:
            f = files[0]
            self.test(bytes(f["content"]), f.get("name"))

    def _on_sample(self, change) -> None:
        source = self._samples.get(change["new"])
        if source is None:
            return
        if isinstance(source, Path):
            data = source.read_bytes()
        else:  # a project image: its blob
            data = self.ws.image_path(source).read_bytes()
        self.test(data, change["new"])

    # ---- display -----------------------------------------------------------------------------------------
    def _on_threshold(self, _change) -> None:
        self._render()
        self._propose()

    def shown(self) -> list[dict]:
        """The predictions at or above the threshold (what the picture and bars highlight)."""
        return [p for p in self.result if p["probability"] >= self.threshold.value]

    def _render(self) -> None:
        if self._picture is None:
            return
        self.picture.layout.display = None
        if self.project.project_type == "ObjectDetection":
            self._render_boxes()
        else:
            self.picture.value = jpeg(self._picture, self._size)
            self._render_bars()

    def _render_bars(self) -> None:
        rows = []
        for p in self.result:  # every tag, sorted by probability (Predictor's order)
            above = p["probability"] >= self.threshold.value
            bar = w.FloatProgress(value=p["probability"], min=0.0, max=1.0,
                                  bar_style="success" if above else "", layout=w.Layout(width="300px"))
            if not above:
                bar.style.bar_color = "#bdbdbd"
            weight = "bold" if above else "normal"
            rows.append(w.HBox([w.HTML(f"<span style='font-weight:{weight}'>{html.escape(p['tag_name'])}</span>",
                                       layout=w.Layout(width="160px")), bar,
                                w.HTML(f"{p['probability']:.1%}")]))
        self.bars.children = rows

    def _render_boxes(self) -> None:
        img = self._picture.copy()
        img.thumbnail(self._size)
        draw = ImageDraw.Draw(img)
        tags = sorted({p["tag_name"] for p in self.result})
        colour = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(tags)}
        shown = self.shown()
        for p in shown:
            bb = p["bounding_box"]
            x0, y0 = bb["left"] * img.width, bb["top"] * img.height
            x1, y1 = x0 + bb["width"] * img.width, y0 + bb["height"] * img.height
            draw.rectangle([x0, y0, x1, y1], outline=colour[p["tag_name"]], width=3)
            draw.text((x0 + 3, max(0, y0 - 12)), f"{p['tag_name']} {p['probability']:.0%}", fill=colour[p["tag_name"]])
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        self.picture.value = buf.getvalue()
        self.bars.children = [w.HTML(f"{len(shown)} of {len(self.result)} boxes at or above "
                                     f"{self.threshold.value:.0%}")]

    # ---- add to training -----------------------------------------------------------------------------------
    @property
    def detection(self) -> bool:
        return self.project.project_type == "ObjectDetection"

    def _build_add_panel(self) -> None:
        """The "Add to training" section, collapsed until opened: the labels to correct and the button."""
        self.stored = None   # the StoredPrediction of the last test (None with store=False or after an error)
        self.added = None    # the training Image the last successful click created
        if self.detection:
            self.labels_input = BBoxWidget(hide_buttons=True)
            hint = ("Keep, move, resize or delete the predicted boxes (those at or above the threshold), draw the "
                    "missed ones and give each its tag; then add the image.")
        elif self.project.classification_type == "Multilabel":
            self.labels_input = w.SelectMultiple(description="Tags")
            hint = "Select every correct tag (the tags at or above the threshold are pre-selected); then add the image."
        else:
            self.labels_input = w.Dropdown(description="Tag")
            hint = "Pick the correct tag (the model's top tag is pre-selected); then add the image."
        self._box_size, self._box_picture = (1, 1), None  # pixel size and source of the box editor's picture
        self.add_button = w.Button(description="Add to training", button_style="success", icon="plus",
                                   tooltip="Add the tested image to the project's training images with these labels")
        self.add_button.on_click(lambda _b: self.add_to_training())
        self.add_panel = w.Accordion(children=[w.VBox([w.HTML(f"<small>{html.escape(hint)}</small>"),
                                                       self.labels_input, self.add_button])],
                                     titles=("Add to training",), selected_index=None)
        self.add_panel.layout.display = "none"  # until a test was stored

    def _propose(self) -> None:
        """Pre-fill the labels with the model's answer at the current threshold, for the learner to correct."""
        self.add_panel.layout.display = None if self.stored is not None else "none"
        tags = self.ws.get_tags(self.project.id)
        shown = self.shown() if self.stored is not None else []
        if self.detection:
            names = [t.name for t in tags if t.type == "Regular"]
            self.labels_input.classes = names
            self.labels_input.colors = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
            if names and self.labels_input.label not in names:
                self.labels_input.label = names[0]  # the tag a newly drawn box gets
            if self.stored is None:
                self.labels_input.bboxes, self.labels_input.image_bytes, self._box_picture = [], b"", None
                return
            if self._box_picture is not self._picture:  # a new test (not a threshold move): show its picture
                picture = ImageOps.contain(self._picture, self._size, PILImage.Resampling.BILINEAR)
                self._box_size, self._box_picture = picture.size, self._picture
                self.labels_input.image_bytes = jpeg(picture, picture.size)
            self.labels_input.selected_index = -1
            self.labels_input.bboxes = [to_box(*(p["bounding_box"][k] for k in ("left", "top", "width", "height")),
                                               self._box_size, p["tag_name"]) for p in shown if p["tag_name"] in names]
            return
        known = {t.id for t in tags}
        top = [p["tag_id"] for p in self.result[:1] if p["tag_id"] in known] if self.stored is not None else []
        options = [(t.name, t.id) for t in tags]
        if isinstance(self.labels_input, w.SelectMultiple):
            self.labels_input.options = options
            self.labels_input.value = tuple(p["tag_id"] for p in shown if p["tag_id"] in known) or tuple(top)
        else:
            self.labels_input.options = [("— choose —", None)] + options
            self.labels_input.value = top[0] if top else None

    def labels(self) -> tuple[list[str], list[dict]]:
        """The corrected labels the button sends: (tag ids, regions as normalised {tag_id, left, top, ...})."""
        if not self.detection:
            value = self.labels_input.value
            return (list(value) if isinstance(value, tuple) else [value] if value else []), []
        by_name = {t.name: t.id for t in self.ws.get_tags(self.project.id) if t.type == "Regular"}
        regions = []
        for i, box in enumerate(self.labels_input.bboxes, 1):
            if box.get("label") not in by_name:
                raise CvlabError("BadRequestImageRegions", f"Box {i} has no tag of this project "
                                 f"({box.get('label')!r}): select it and pick a tag, or delete it. Nothing was added.")
            region = to_region(box, self._box_size, by_name[box["label"]])
            if region is not None:  # a click without a drag
                regions.append(region)
        return [], regions

    @guarded
    def add_to_training(self):
        """Add the tested image to the project's training images with the corrected labels, in one call
        (``cvlab.active.add_predictions_to_training``); returns the new Image. Nothing is written on an error."""
        from cvlab.active import add_predictions_to_training

        if self.stored is None:
            why = ("this quick test keeps its predictions out of storage (store=False): open it with store=True"
                   if not self.store else "test an image first (upload one or pick a sample)")
            raise CvlabError("NotFound", f"There is no stored prediction to add: {why}, then add it.")
        tag_ids, regions = self.labels()
        if self.detection and not regions:
            raise CvlabError("BadRequestImageRegions", "Keep or draw at least one box with its tag before adding "
                             "the image to training. Nothing was added.")
        if not self.detection and not tag_ids:
            raise CvlabError("BadRequestImageTags", "Choose the correct tag before adding the image to training. "
                             "Nothing was added.")
        summary = add_predictions_to_training(self.ws, self.project.id, [(self.stored.id, tag_ids, regions)])
        result = summary.images[0]
        if result.status != "OK":
            raise CvlabError(result.status, f"{result.message or result.status} Nothing was added.")
        self.added = image = result.image
        what = (f"{len(image.regions)} box{'es' if len(image.regions) != 1 else ''}" if self.detection
                else ("tags " if len(image.tags) > 1 else "tag ") + ", ".join(t.tag_name for t in image.tags))
        count = self.ws.get_image_count(self.project.id)
        self.status.info(f"Added to training with {what}: the project has {count} images now. Train again to "
                         "use it.")
        return image

    def fallback_text(self) -> str:
        return (super().fallback_text() + " Without widgets: Predictor.load(ws, iteration.id).predict(image) "
                "gives the same predictions; cvlab.active.add_predictions_to_training(ws, project.id, "
                "[(stored_prediction.id, tag_ids, regions)]) adds a stored one to training.")


def quick_test(project, iteration=None, ws=None, **kwargs) -> QuickTest:
    """`project.quick_test()`: test one image on an iteration (default: the latest trained one)."""
    ws, project = resolve(project, ws)
    return QuickTest(ws, project, iteration, **kwargs)

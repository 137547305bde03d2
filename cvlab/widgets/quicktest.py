"""Quick test: one image (uploaded or picked) through a trained iteration, as the portal's Quick Test does.

Classification shows one bar per tag; detection draws the boxes on the picture. The threshold slider only
changes what is shown, never the model's output. Like Azure's quick test the result is stored as a prediction
(``store=False`` to keep it out of the Predictions list), so it can feed active learning later.
"""
from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import ipywidgets as w
from PIL import ImageDraw

from cvlab import images as cv_images
from cvlab.errors import CvlabError

from ._common import PALETTE, StatusLine, TextFallback, find_iteration, jpeg, resolve

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
        self.sample = w.Dropdown(description="or sample", options=[("—", None)] + [(n, n) for n in self._samples],
                                 value=None)
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
        self.threshold.observe(lambda _c: self._render(), names=["value"])
        self._last: tuple[bytes, str] | None = None
        if chosen is None:
            self.status.error(CvlabError("NotFoundIteration", "This project has no trained iteration yet: train "
                                         "one (project.train()) and run this cell again."))
        super().__init__([w.HTML(f"<b>Quick test</b> {html.escape(project.name)}"), self.iteration,
                          w.HBox([self.upload, self.sample]), self.threshold, self.picture, self.bars, self.status])
        self.add_class("cvlab-quick-test")

    def _sample_options(self, samples) -> dict[str, Any]:
        """Sample name -> a path, or a project Image (the first few training images are always offered)."""
        out: dict[str, Any] = {}
        for p in samples:
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
            if self.store:
                self.ws.store_prediction(self.project.id, self.iteration.value, data, self.result,
                                         application=APPLICATION)
        except CvlabError as err:
            self.result, self._picture = [], None
            self.picture.value = b""
            self.picture.layout.display = "none"
            self.bars.children = ()
            self.status.error(err)
            return []
        self.status.info(f"{name}: {len(self.result)} predictions from {self.iteration.label}.")
        self._render()
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

    def fallback_text(self) -> str:
        return (super().fallback_text() + " Without widgets: Predictor.load(ws, iteration.id).predict(image) "
                "gives the same predictions.")


def quick_test(project, iteration=None, ws=None, **kwargs) -> QuickTest:
    """`project.quick_test()`: test one image on an iteration (default: the latest trained one)."""
    ws, project = resolve(project, ws)
    return QuickTest(ws, project, iteration, **kwargs)

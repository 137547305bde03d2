"""Threshold explorer: sliders for the probability (and, for detection, overlap) threshold that update the
Performance numbers and the plots live, as on Azure's Performance page.

Everything expensive happens once: the evaluation is parsed into arrays, APs and matchings are cached per overlap
threshold (``cvlab.performance.Evaluation``) and the figure is built once. A probability move recounts sorted
arrays, moves the operating-point markers and the threshold line, and re-renders one small PNG
(``benchmarks/explorer.py`` measures it: well under 200 ms for 1,000 predictions).
"""
from __future__ import annotations

import html
import io
import time

import ipywidgets as w
import numpy as np

from cvlab import views
from cvlab.metrics import Undefined, is_defined
from cvlab.performance import Evaluation, IterationPerformance, load_evaluation_dict

SPLIT_LABELS = {"cv": "self-test", "holdout": "held-out images"}


def split_label(split: str, k_folds: int | None = None, project_type: str | None = None) -> str:
    """What the numbers were measured on, in words: Quick classification cross-validates (k folds), Advanced
    classification and detection hold back a validation split of the training images (``evaluation.json``'s
    ``k_folds``); held-out images are the learner's own."""
    if split != "cv":
        return SPLIT_LABELS.get(split, split)
    if k_folds and k_folds > 1:
        return f"self-test ({k_folds}-fold cross-validation)"
    if k_folds == 1 or project_type == "ObjectDetection":
        return "self-test (validation split)"
    return SPLIT_LABELS["cv"]


def _cell(value, pct: bool = True) -> str:
    if isinstance(value, Undefined):
        return f'<td title="{html.escape(value.reason)}" style="color:#888">n/a</td>'
    return f"<td>{value:.1%}</td>" if pct else f"<td>{value}</td>"


def _std(value) -> str:
    return f' <span style="color:#888">±{value:.1%}</span>' if is_defined(value) else ""


def performance_table(perf: IterationPerformance, measured_on: str | None = None) -> str:
    """HTML table of per-tag and overall P / R / F1 / AP and counts (n/a cells carry their reason)."""
    head = "".join(f"<th>{h}</th>" for h in ("tag", "precision", "recall", "F1", "AP", "TP", "FP", "FN"))
    rows = []
    for t in perf.per_tag_performance:
        rows.append(f"<tr><td>{html.escape(t.name)}</td>{_cell(t.precision)}{_cell(t.recall)}{_cell(t.f1)}"
                    f"{_cell(t.average_precision)}{_cell(t.true_positives, False)}"
                    f"{_cell(t.false_positives, False)}{_cell(t.false_negatives, False)}</tr>")
    tp = sum(t.true_positives for t in perf.per_tag_performance)
    fp = sum(t.false_positives for t in perf.per_tag_performance)
    fn = sum(t.false_negatives for t in perf.per_tag_performance)
    rows.append(f"<tr style='font-weight:bold'><td>overall</td>{_cell(perf.precision)}{_cell(perf.recall)}"
                f"{_cell(perf.f1)}{_cell(perf.average_precision)}<td>{tp}</td><td>{fp}</td><td>{fn}</td></tr>")
    ap_name = "mAP" if perf.project_type == "ObjectDetection" else "AP (mean over tags)"
    summary = (f"<b>Precision</b> {_fmt(perf.precision)}{_std(perf.precision_std_deviation)} &nbsp; "
               f"<b>Recall</b> {_fmt(perf.recall)}{_std(perf.recall_std_deviation)} &nbsp; "
               f"<b>{ap_name}</b> {_fmt(perf.average_precision)}")
    if perf.map_50_95 is not None:
        summary += f" &nbsp; <b>mAP@[.5:.95]</b> {_fmt(perf.map_50_95)}"
    settings = f"threshold {perf.threshold:.0%}" + (
        f", overlap {perf.overlap_threshold:.0%}" if perf.overlap_threshold is not None else "")
    where = measured_on or split_label(perf.split, project_type=perf.project_type)
    return (f"<div>{summary}<br><small>{html.escape(where)}, {perf.image_count} images, "
            f"{settings}</small></div><table class='cvlab-perf'><thead><tr>{head}</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _fmt(value) -> str:
    return f"{value:.1%}" if is_defined(value) else "n/a"


class ThresholdExplorer:
    """``ThresholdExplorer(evaluation)``: an ``evaluation.json`` dict or an ``Evaluation``; display it in a cell.

    Widgets: ``threshold`` (and ``overlap`` for detection) FloatSliders, ``split`` toggle when held-out images
    exist, ``curve_tag`` (P/R/F1 curves overall or for one tag), ``table`` (HTML), ``plot`` (PNG Image). ``last_update_ms`` is the time the last move took.
    """

    def __init__(self, evaluation, split: str = "cv", threshold: float = 0.5, overlap_threshold: float = 0.5,
                 dpi: int = 110):
        self._doc = evaluation if isinstance(evaluation, dict) else None
        self._evals: dict[str, Evaluation] = {}
        if isinstance(evaluation, Evaluation):
            self._evals[evaluation.split] = evaluation
            split = evaluation.split
        self.ev = self._evaluation(split)
        self.dpi = dpi
        self.last_update_ms = 0.0
        self.threshold = w.FloatSlider(value=threshold, min=0.0, max=1.0, step=0.01, description="Probability",
                                       readout_format=".0%", continuous_update=True,
                                       layout=w.Layout(width="360px"))
        self.overlap = None
        if self.ev.is_detection:
            self.overlap = w.FloatSlider(value=overlap_threshold, min=0.05, max=0.95, step=0.05,
                                         description="Overlap", readout_format=".0%", continuous_update=True,
                                         layout=w.Layout(width="360px"))
        k_folds = (self._doc or {}).get("k_folds")
        label = lambda sp: split_label(sp, k_folds, self.ev.project_type)  # noqa: E731
        if self._doc is None:
            options = [(label(split), split)]
        else:
            options = [(label("cv"), "cv")]
            if any(r.get("split") == "holdout" for r in self._doc.get("records", [])):
                options.append((label("holdout"), "holdout"))
        self._measured_on = dict((v, k) for k, v in options)
        self.split = w.ToggleButtons(options=options, value=split, description="Measured on",
                                     style={"button_width": "auto"},
                                     layout=w.Layout(display="" if len(options) > 1 else "none"))
        # a Dropdown shows None as a blank box: the "all tags" choice is the value "" instead
        self.curve_tag = w.Dropdown(options=[("all tags (micro)", "")] + [
            (self.ev.tags[j]["name"], self.ev.tags[j]["id"]) for j in self.ev.regular_idx],
            value="", description="Curve for")
        self.table = w.HTML()
        self.plot = w.Image(format="png")
        self._build_figure()
        self._refresh(redraw=True)
        self.threshold.observe(lambda change: self._refresh(), names="value")
        if self.overlap is not None:
            self.overlap.observe(lambda change: self._refresh(redraw=True), names="value")
        self.split.observe(self._on_split, names="value")
        self.curve_tag.observe(lambda change: self._refresh(redraw=True), names="value")
        sliders = [self.threshold] + ([self.overlap] if self.overlap is not None else [])
        self.widget = w.VBox([w.HBox(sliders), w.HBox([self.split, self.curve_tag]), self.table, self.plot])

    @classmethod
    def for_iteration(cls, project, iteration=None, ws=None, **kwargs) -> "ThresholdExplorer":
        """Explorer of a trained iteration (default: the latest), from a Project record, id or name."""
        from cvlab.widgets._common import find_iteration, resolve

        ws, p = resolve(project, ws)
        it = find_iteration(ws, p.id, iteration)
        return cls(load_evaluation_dict(ws, p.id, it.id), **kwargs)

    def _evaluation(self, split: str) -> Evaluation:
        if split not in self._evals:
            self._evals[split] = Evaluation.from_dict(self._doc, split)
        return self._evals[split]

    @property
    def overlap_value(self) -> float:
        return self.overlap.value if self.overlap is not None else 0.5

    def performance(self) -> IterationPerformance:
        return self.ev.performance(self.threshold.value, self.overlap_value)

    def _build_figure(self) -> None:
        """Draw once, then blit in two layers over saved backgrounds: the curves, legends and title are redrawn
        only when they change (overlap, split, curve choice); a probability move redraws just the markers and the
        threshold line, which is what keeps it cheap."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.fig = Figure(figsize=(8.5, 3.3), dpi=self.dpi, layout="constrained")
        canvas = FigureCanvasAgg(self.fig)
        self.ax_pr, self.ax_sweep = self.fig.subplots(1, 2)
        self._pr = views.draw_pr_curves(self.ax_pr, self.ev, self.overlap_value)
        self._sweep = views.draw_threshold_sweep(self.ax_sweep, self.ev, self.overlap_value, self.threshold.value)
        self._curves = [line for line, _ in self._pr.values()] + list(self._sweep["lines"].values()) \
            + [self.ax_pr.get_legend(), self.ax_sweep.get_legend(), self.ax_sweep.title]
        self._moving = [marker for _, marker in self._pr.values()] + [self._sweep["threshold"]]
        for artist in self._curves + self._moving:
            artist.set_animated(True)
        canvas.draw()
        self.fig.set_layout_engine("none")  # keep the layout computed once
        self._axes_background = canvas.copy_from_bbox(self.fig.bbox)
        self._curves_background = None

    def _draw_layer(self, background, artists):
        canvas = self.fig.canvas
        canvas.restore_region(background)
        for artist in artists:
            artist.axes.draw_artist(artist)

    def _render(self) -> bytes:
        from PIL import Image

        if self._curves_background is None:
            self._draw_layer(self._axes_background, self._curves)
            self._curves_background = self.fig.canvas.copy_from_bbox(self.fig.bbox)
        self._draw_layer(self._curves_background, self._moving)
        buf = io.BytesIO()
        Image.fromarray(np.asarray(self.fig.canvas.buffer_rgba())[..., :3]).save(buf, format="PNG",
                                                                                  compress_level=1)
        return buf.getvalue()

    def _refresh(self, redraw: bool = False) -> None:
        """Recount at the thresholds; ``redraw`` also renews the curves (new overlap threshold, split or tag)."""
        start = time.perf_counter()
        if redraw:
            views.update_pr_curves(self._pr, self.ev, self.overlap_value)
            views.update_threshold_sweep(self._sweep, self.ev, self.overlap_value, self.curve_tag.value or None)
            self._curves_background = None
        t = self.threshold.value
        self.table.value = performance_table(self.performance(), self._measured_on.get(self.split.value))
        views.update_pr_markers(self._pr, self.ev, t, self.overlap_value)
        self._sweep["threshold"].set_xdata([t, t])
        self._sweep["threshold"].set_visible(True)
        self.plot.value = self._render()
        self.last_update_ms = (time.perf_counter() - start) * 1000

    def _on_split(self, change) -> None:
        self.ev = self._evaluation(change["new"])
        self._refresh(redraw=True)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

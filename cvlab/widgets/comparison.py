"""Iteration comparison: two iterations' Performance-page numbers and per-tag values side by side.

Everything shown comes from `cvlab.performance.get_iteration_performance`; this module only lays it out
(A, B and B − A) and redraws when the threshold or overlap slider moves. Like is compared with like: when both
iterations scored the project's held-out images, those are the default ("Measured on"); the self-test numbers of
two iterations come from different training images, and the table says so.
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from cvlab.errors import CvlabError
from cvlab.metrics import is_defined
from cvlab.performance import get_iteration_performance

from ._common import StatusLine, TextFallback, find_iteration, resolve

OVERALL = (("Precision", "precision"), ("Recall", "recall"), ("F1", "f1"), ("AP", "average_precision"))
PER_TAG = (("precision", "precision"), ("recall", "recall"), ("AP", "average_precision"))


def _pct(v) -> str:
    return f"{v:.1%}" if v is not None and is_defined(v) else "<span style='color:#888'>n/a</span>"


def _delta(a, b) -> str:
    if a is None or b is None or not (is_defined(a) and is_defined(b)):
        return ""
    d = float(b) - float(a)
    colour = "#2e7d32" if d > 0.0005 else "#c62828" if d < -0.0005 else "#888"
    return f"<span style='color:{colour}'>{d * 100:+.1f} pts</span>"


class IterationComparison(TextFallback, w.VBox):
    """Pick iterations A and B; read their precision / recall / F1 / AP overall and per tag, and the change."""

    _needs = "This iteration comparison"

    def __init__(self, ws, project, a: Any = None, b: Any = None, *, threshold: float = 0.5,
                 overlap_threshold: float = 0.5, split: str | None = None):
        self.ws, self.project = ws, project
        done = ws.get_trained_iterations(project.id)
        if len(done) < 2 and (a is None or b is None):
            raise CvlabError("NotFoundIteration", f"Project {project.name!r} has {len(done)} trained iteration(s); "
                             "a comparison needs two: train again (e.g. after adding images) and rerun this cell.")
        a = find_iteration(ws, project.id, a) if a is not None else done[-2]
        b = find_iteration(ws, project.id, b) if b is not None else done[-1]
        options = [(it.name, it.id) for it in done]
        self.a = w.Dropdown(description="A", options=options, value=a.id)
        self.b = w.Dropdown(description="B", options=options, value=b.id)
        self.threshold = w.FloatSlider(value=threshold, min=0.0, max=1.0, step=0.01, description="Threshold",
                                       readout_format=".0%", continuous_update=False)
        self.overlap = w.FloatSlider(value=overlap_threshold, min=0.05, max=0.95, step=0.05, description="Overlap",
                                     readout_format=".0%", continuous_update=False)
        if project.project_type != "ObjectDetection":
            self.overlap.layout.display = "none"
        held_out = all(self._has_holdout(it.id) for it in (a, b))
        self.split = w.ToggleButtons(options=[("held-out images (the same for both)", "holdout"),
                                              ("self-test (each its own training images)", "cv")],
                                     value=split or ("holdout" if held_out else "cv"), description="Measured on",
                                     style={"button_width": "auto"})
        if not held_out:
            self.split.layout.display = "none"
        self.table = w.HTML()
        self.status = StatusLine()
        self.performances: tuple = (None, None)
        for control in (self.a, self.b, self.threshold, self.overlap, self.split):
            control.observe(lambda _c: self.refresh(), names=["value"])
        super().__init__([w.HTML(f"<b>Compare iterations</b> {html.escape(project.name)}"),
                          w.HBox([self.a, self.b]), self.split, w.HBox([self.threshold, self.overlap]), self.table,
                          self.status])
        self.add_class("cvlab-compare")
        self.refresh()

    def refresh(self) -> None:
        """Recompute both performances at the current sliders and redraw the table."""
        try:
            perf = tuple(get_iteration_performance(self.ws, self.project.id, it_id, threshold=self.threshold.value,
                                                   overlap_threshold=self.overlap.value, split=self.split.value)
                         for it_id in (self.a.value, self.b.value))
        except CvlabError as err:
            self.status.error(err)
            return
        self.performances = perf
        self.status.clear()
        self.table.value = self._html(*perf)

    def _html(self, pa, pb) -> str:
        its = {it.id: it for it in self.ws.get_iterations(self.project.id)}
        ia, ib = its[self.a.value], its[self.b.value]
        ap_name = "mAP" if self.project.project_type == "ObjectDetection" else "AP"

        def head(it, perf):
            return (f"<th>{html.escape(it.name)}<br><small>{it.training_type}, {perf.image_count} images"
                    "</small></th>")

        rows = [f"<tr><th></th>{head(ia, pa)}{head(ib, pb)}<th>B − A</th></tr>"]
        for label, field in OVERALL:
            va, vb = getattr(pa, field), getattr(pb, field)
            rows.append(f"<tr><td><b>{ap_name if field == 'average_precision' else label}</b></td><td>{_pct(va)}</td>"
                        f"<td>{_pct(vb)}</td><td>{_delta(va, vb)}</td></tr>")
        tags_a = {t.id: t for t in pa.per_tag_performance}
        tags_b = {t.id: t for t in pb.per_tag_performance}
        order = list(tags_a) + [t for t in tags_b if t not in tags_a]
        for tid in order:
            ta, tb = tags_a.get(tid), tags_b.get(tid)
            name = html.escape((ta or tb).name)
            for label, field in PER_TAG:
                va = getattr(ta, field) if ta else None
                vb = getattr(tb, field) if tb else None
                rows.append(f"<tr><td>{name} · {label}</td><td>{_pct(va)}</td><td>{_pct(vb)}</td>"
                            f"<td>{_delta(va, vb)}</td></tr>")
        settings = f"threshold {self.threshold.value:.0%}" + (
            f", overlap {self.overlap.value:.0%}" if self.project.project_type == "ObjectDetection" else "")
        if self.split.value == "holdout":
            basis = f"both measured on the same {pa.image_count} held-out images"
        elif pa.image_count != pb.image_count or ia.training_type != ib.training_type:
            basis = (f"<b>not like with like</b>: each self-test uses its own training images ({pa.image_count} vs "
                     f"{pb.image_count}, {ia.training_type} vs {ib.training_type} training); hold images out "
                     "(metadata holdout=true) to compare on the same ones")
        else:
            basis = "each measured on its own training images (self-test)"
        return (f"<table class='cvlab-compare-table'>{''.join(rows)}</table><small>{basis}; {settings}; "
                "n/a: undefined (e.g. precision when nothing was predicted).</small>")

    def _has_holdout(self, iteration_id: str) -> bool:
        from cvlab.performance import load_evaluation_dict

        try:
            return any(r.get("split") == "holdout" for r in load_evaluation_dict(self.ws, self.project.id,
                                                                                  iteration_id)["records"])
        except CvlabError:
            return False

    def fallback_text(self) -> str:
        return (super().fallback_text() + " Without widgets: project.performance(iteration_id) for each iteration "
                "gives the same numbers.")


def compare_iterations(project, a=None, b=None, ws=None, **kwargs) -> IterationComparison:
    """Two iterations side by side (default: the last two trained ones)."""
    ws, project = resolve(project, ws)
    return IterationComparison(ws, project, a, b, **kwargs)

"""Matplotlib figures of an evaluation: PR curves, P/R/F1 against threshold, confusion matrix, mistakes, splits.

Every function takes an ``Evaluation`` (or an ``evaluation.json`` dict, parsed with ``split``) and returns a
``matplotlib.figure.Figure``. Figures come from pyplot and are closed at once: returned as a cell's last value they
show exactly once in Jupyter, and they never pile up in pyplot's figure list. The threshold explorer widget draws
on the same helpers (``draw_*``) onto its own Agg figure.
"""
from __future__ import annotations

import numpy as np

from cvlab import metrics as M
from cvlab.errors import CvlabError
from cvlab.performance import Evaluation, SplitComparison

THRESHOLDS = np.linspace(0.0, 1.0, 101)
TRUTH_COLOUR, TP_COLOUR, FP_COLOUR, FN_COLOUR = "#2ca02c", "#1f77b4", "#d62728", "#ff7f0e"


def plain(text) -> str:
    """User text (a tag name) as matplotlib must show it: literally. Two "$" start mathtext, where a name such as
    "$\\undefinedmacro{x}$" made every figure of the project fail, so each "$" is escaped (matplotlib shows "\\$"
    as "$" and never parses it as maths)."""
    return str(text).replace("$", r"\$")


def as_evaluation(evaluation, split: str = "cv") -> Evaluation:
    return evaluation if isinstance(evaluation, Evaluation) else Evaluation.from_dict(evaluation, split)


def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, layout="constrained")
    plt.close(fig)
    return fig, axes


def _ratio(num, den):
    """Element-wise num/den with NaN where den is 0 (undefined: drawn as a gap, never as 0)."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def sweep_curves(ev: Evaluation, overlap_threshold: float = 0.5, tag_id: str | None = None,
                 thresholds=THRESHOLDS) -> dict:
    """Precision, recall and F1 at every threshold, micro-averaged over regular tags or for one tag."""
    tp, fp, fn = ev.sweep(thresholds, overlap_threshold)
    cols = ev.regular_idx if tag_id is None else [ev.tag_index[tag_id]] if tag_id in ev.tag_index else None
    if cols is None:
        raise CvlabError("BadRequestInvalidIds", f"unknown tag id {tag_id!r}: use one of the iteration's tags.")
    tp, fp, fn = tp[:, cols].sum(1), fp[:, cols].sum(1), fn[:, cols].sum(1)
    p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    with np.errstate(invalid="ignore"):  # F1 is undefined where P or R is (NaN), 0 where both are 0
        f1 = np.where(p + r > 0, _ratio(2 * p * r, p + r), np.where(np.isnan(p + r), np.nan, 0.0))
    return {"threshold": np.asarray(thresholds), "precision": p, "recall": r, "f1": f1}


# ---------------------------------------------------------------------------------------------- drawing helpers
def _pr_label(name: str, ap) -> str:
    name = plain(name)
    return f"{name} (AP {ap:.0%})" if M.is_defined(ap) else f"{name} (AP n/a: {plain(ap.reason)})"


def _pr_xy(p, r):
    """Step curve points: on (R_{k-1}, R_k] the precision is P_k ("pre" steps), so its area is the step-wise AP."""
    return np.r_[0.0, r], np.r_[p[:1], p]


def draw_pr_curves(ax, ev: Evaluation, overlap_threshold: float = 0.5, threshold: float | None = None) -> dict:
    """PR curve per regular tag (AP in the legend); returns {tag_id: (line, marker)} for live updates."""
    aps = ev.average_precisions(overlap_threshold)
    artists = {}
    for k, (tag_id, (thr, p, r)) in enumerate(ev.pr_curves(overlap_threshold).items()):
        name = ev.tags[ev.tag_index[tag_id]]["name"]
        line, = ax.step(*_pr_xy(p, r), where="pre", label=_pr_label(name, aps[k]))
        marker, = ax.plot([], [], "o", color=line.get_color())
        artists[tag_id] = (line, marker)
    ax.set(xlim=(0, 1.02), ylim=(0, 1.05), xlabel="recall", ylabel="precision", title="Precision-recall per tag")
    ax.legend(loc="lower left", fontsize="small",
              title=f"IoU >= {overlap_threshold:.0%}" if ev.is_detection else None, title_fontsize="small")
    ax.grid(alpha=0.3)
    if threshold is not None:
        update_pr_markers(artists, ev, threshold, overlap_threshold)
    return artists


def update_pr_curves(artists: dict, ev: Evaluation, overlap_threshold: float = 0.5) -> None:
    """New curves and legend labels (new overlap threshold, or another split of the same iteration)."""
    aps = ev.average_precisions(overlap_threshold)
    curves = ev.pr_curves(overlap_threshold)
    legend = None
    for k, (tag_id, (line, _)) in enumerate(artists.items()):
        _, p, r = curves[tag_id]
        line.set_data(*_pr_xy(p, r))
        legend = line.axes.get_legend()
        if legend is not None:
            legend.get_texts()[k].set_text(_pr_label(ev.tags[ev.tag_index[tag_id]]["name"], aps[k]))
    if legend is not None and ev.is_detection:
        legend.set_title(f"IoU >= {overlap_threshold:.0%}", prop={"size": "small"})


def update_pr_markers(artists: dict, ev: Evaluation, threshold: float, overlap_threshold: float = 0.5) -> None:
    """Move each tag's marker to its (recall, precision) at the threshold; hidden where undefined."""
    tp, fp, fn = ev.counts(threshold, overlap_threshold)
    for tag_id, (_, marker) in artists.items():
        j = ev.tag_index[tag_id]
        p, r = _ratio(tp[j], tp[j] + fp[j]), _ratio(tp[j], tp[j] + fn[j])
        marker.set_data([r] if np.isfinite(p) and np.isfinite(r) else [], [p] if np.isfinite(p) else [])


def draw_threshold_sweep(ax, ev: Evaluation, overlap_threshold: float = 0.5, threshold: float | None = None,
                         tag_id: str | None = None) -> dict:
    """Precision, recall and F1 against the probability threshold; returns the artists for live updates."""
    c = sweep_curves(ev, overlap_threshold, tag_id)
    lines = {k: ax.plot(c["threshold"], c[k], label=k)[0] for k in ("precision", "recall", "f1")}
    vline = ax.axvline(threshold if threshold is not None else 0.5, color="k", ls="--", lw=1,
                       visible=threshold is not None)
    who = "overall (micro)" if tag_id is None else plain(ev.tags[ev.tag_index[tag_id]]["name"])
    ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="probability threshold", ylabel="value",
           title=f"P / R / F1 against threshold: {who}")
    ax.legend(loc="lower left", fontsize="small")
    ax.grid(alpha=0.3)
    return {"lines": lines, "threshold": vline, "tag_id": tag_id}


def update_threshold_sweep(artists: dict, ev: Evaluation, overlap_threshold: float = 0.5,
                           tag_id: str | None = None) -> None:
    """New P/R/F1 curves, for the overall numbers (``tag_id`` None) or one tag."""
    c = sweep_curves(ev, overlap_threshold, tag_id)
    artists["tag_id"] = tag_id
    for key, line in artists["lines"].items():
        line.set_ydata(c[key])
    who = "overall (micro)" if tag_id is None else plain(ev.tags[ev.tag_index[tag_id]]["name"])
    next(iter(artists["lines"].values())).axes.set_title(f"P / R / F1 against threshold: {who}")


# ------------------------------------------------------------------------------------------------- figures
def pr_curves(evaluation, overlap_threshold: float = 0.5, threshold: float | None = 0.5, split: str = "cv"):
    """Precision-recall curve of every tag, with the operating point at ``threshold`` marked."""
    ev = as_evaluation(evaluation, split)
    fig, ax = _figure(6, 4.5)
    draw_pr_curves(ax[0, 0], ev, overlap_threshold, threshold)
    return fig


def threshold_sweep(evaluation, overlap_threshold: float = 0.5, threshold: float | None = 0.5,
                    tag_id: str | None = None, split: str = "cv"):
    """Precision, recall and F1 against the probability threshold (overall, or of ``tag_id``)."""
    ev = as_evaluation(evaluation, split)
    fig, ax = _figure(6, 4)
    draw_threshold_sweep(ax[0, 0], ev, overlap_threshold, threshold, tag_id)
    return fig


def confusion_matrix(evaluation, threshold: float = 0.5, split: str = "cv"):
    """Classification only. Multiclass: truth x predicted counts with a "(none)" row/column (Negative or below
    the threshold). Multilabel: per tag TP / FP / FN / TN at the threshold (each tag is its own yes/no question)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    ev = as_evaluation(evaluation, split)
    if ev.is_detection:
        raise CvlabError("BadRequestNotSupported", "a confusion matrix is for classification projects; for "
                                                   "detection use mistakes_gallery() or pr_curves().")
    if ev.classification_type == "Multiclass":
        names, cm = ev.confusion(threshold)
        fig, ax = _figure(1.2 + 0.9 * len(names), 1 + 0.8 * len(names))
        ConfusionMatrixDisplay(cm, display_labels=[plain(n) for n in names]).plot(ax=ax[0, 0], colorbar=False,
                                                              xticks_rotation=45)
        ax[0, 0].set(xlabel=f"predicted (threshold {threshold:.0%})", ylabel="truth")
        return fig
    tp, fp, fn = (a[ev.regular_idx] for a in ev.counts(threshold))
    tn = len(ev.records) - tp - fp - fn
    table = np.c_[tp, fp, fn, tn]
    names = [plain(ev.tags[j]["name"]) for j in ev.regular_idx]
    fig, axes = _figure(5, 1 + 0.5 * len(names))
    ax = axes[0, 0]
    ax.imshow(table, cmap="Blues", aspect="auto")
    for (i, k), v in np.ndenumerate(table):
        ax.text(k, i, str(v), ha="center", va="center")
    ax.set(xticks=range(4), xticklabels=["TP", "FP", "FN", "TN"], yticks=range(len(names)), yticklabels=names,
           title=f"Per-tag outcomes at threshold {threshold:.0%}")
    return fig


def mistakes_gallery(evaluation, load_image, threshold: float = 0.5, overlap_threshold: float = 0.5,
                     kind: str = "all", max_images: int = 12, columns: int = 4, split: str = "cv"):
    """The images the model got wrong, worst first. ``load_image(image_id) -> PIL.Image`` (see
    ``workspace_image_loader``). Detection: truth boxes missed (orange, dashed), false boxes (red), right boxes
    (blue). Classification: the title lists missed tags (FN) and wrong tags (FP) with their probabilities.
    ``kind``: "all", "false_positives" or "false_negatives"."""
    if kind not in ("all", "false_positives", "false_negatives"):
        raise CvlabError("BadRequestInvalid", f"kind must be 'all', 'false_positives' or 'false_negatives', "
                                              f"got {kind!r}.")
    ev = as_evaluation(evaluation, split)
    items = [m for m in ev.mistakes(threshold, overlap_threshold) if kind == "all" or m[kind]][:max_images]
    if not items:
        fig, ax = _figure(5, 1.2)
        ax[0, 0].axis("off")
        ax[0, 0].text(0.5, 0.5, f"No mistakes of this kind at threshold {threshold:.0%}.", ha="center",
                      va="center")
        return fig
    cols = min(columns, len(items))
    rows = -(-len(items) // cols)
    fig, axes = _figure(3.2 * cols, 3.4 * rows, rows, cols)
    for ax in axes.ravel()[len(items):]:
        ax.axis("off")
    for ax, m in zip(axes.ravel(), items):
        img = load_image(m["image_id"])
        w, h = img.size
        ax.imshow(img)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():  # framed in red, as the portal frames a mispredicted image
            spine.set(edgecolor=FP_COLOUR, linewidth=4)
        if ev.is_detection:
            groups = [("true_positives", TP_COLOUR, "-"), ("false_positives", FP_COLOUR, "-"),
                      ("false_negatives", FN_COLOUR, "--")]
            for key, colour, ls in groups:
                if kind != "all" and key not in (kind, "true_positives"):
                    continue
                for b in m[key]:
                    _box(ax, b, w, h, colour, ls)
            ax.set_title(f"{len(m['false_positives'])} false, {len(m['false_negatives'])} missed", fontsize=9)
        else:
            fn = ", ".join(f"{plain(x['tag_name'])} {x['probability']:.0%}" for x in m["false_negatives"])
            fp = ", ".join(f"{plain(x['tag_name'])} {x['probability']:.0%}" for x in m["false_positives"])
            ax.set_title("\n".join(s for s in (f"missed: {fn}" if fn else "", f"wrong: {fp}" if fp else "") if s),
                         fontsize=9, color=FP_COLOUR)
    return fig


def _box(ax, item, w, h, colour, ls) -> None:
    from matplotlib.patches import Rectangle

    l, t, bw, bh = item["box"]
    ax.add_patch(Rectangle((l * w, t * h), bw * w, bh * h, fill=False, edgecolor=colour, lw=2, ls=ls))
    label = plain(item["tag_name"]) + ("" if item["probability"] is None else f" {item['probability']:.0%}")
    ax.text(l * w, t * h, label, color="white", fontsize=7, va="bottom",
            bbox={"facecolor": colour, "alpha": 0.8, "pad": 1, "lw": 0})


def workspace_image_loader(ws, project_id: str):
    """``load_image`` for ``mistakes_gallery``: opens the image (RGB, EXIF-oriented) from the workspace."""
    def load(image_id: str):
        return ws.open_image(ws.get_image(project_id, image_id))
    return load


def compare_splits_figure(comparison: SplitComparison, metrics=("precision", "recall", "AP")):
    """Self-test (Azure's cross-validation on the training images) beside the held-out images, per tag."""
    frames = {"self-test (cv)": comparison.self_test.to_frame()}
    if comparison.holdout is not None:
        frames["held-out"] = comparison.holdout.to_frame()
    fig, axes = _figure(4 * len(metrics), 3.6, 1, len(metrics))
    for ax, metric in zip(axes[0], metrics):
        labels = list(frames["self-test (cv)"].index)
        x = np.arange(len(labels))
        width = 0.8 / len(frames)
        for k, (name, frame) in enumerate(frames.items()):
            values = frame[metric].reindex(labels).to_numpy(dtype=float)
            ax.bar(x + (k - (len(frames) - 1) / 2) * width, np.nan_to_num(values), width, label=name)
        ax.set(xticks=x, ylim=(0, 1.05), title=metric)
        ax.set_xticklabels([plain(n) for n in labels], rotation=30, ha="right")
    axes[0, 0].legend(fontsize="small")
    if comparison.holdout is None:
        fig.suptitle(plain(comparison.holdout_reason), fontsize=9)
    return fig

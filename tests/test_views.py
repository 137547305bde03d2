"""cvlab.views: the figures show the numbers the metrics compute."""
import numpy as np
import pytest
from PIL import Image

from cvlab import views
from cvlab.errors import CvlabError
from cvlab.performance import Evaluation, compare_evaluation_splits
from helpers import CAT, DOG, detection_evaluation, multiclass_evaluation


@pytest.fixture(scope="module")
def mc():
    return Evaluation.from_dict(multiclass_evaluation())


@pytest.fixture(scope="module")
def det():
    return Evaluation.from_dict(detection_evaluation())


def test_pr_curves_mark_the_operating_point(mc):
    fig = views.pr_curves(mc, threshold=0.4)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["cat (AP 100%)", "dog (AP 58%)"]
    perf = mc.performance(0.4)
    markers = [l for l in ax.lines if l.get_marker() == "o"]
    for marker, tag in zip(markers, perf.per_tag_performance):
        (x,), (y,) = marker.get_data()
        assert (x, y) == (tag.recall, tag.precision)
    # The step curve's area is the tag's AP (step-wise, as sklearn).
    steps = [l for l in ax.lines if l.get_marker() != "o"]
    for line, tag in zip(steps, perf.per_tag_performance):
        _, p, r = mc.pr_curves()[tag.id]
        assert np.sum(np.diff(np.r_[0, r]) * p) == pytest.approx(tag.average_precision)


def test_threshold_sweep_agrees_with_performance(mc, det):
    for ev, overlap in ((mc, 0.5), (det, 0.5), (det, 0.7)):
        c = views.sweep_curves(ev, overlap)
        for i in (0, 30, 45, 50, 75, 100):
            perf = ev.performance(c["threshold"][i], overlap)
            for key in ("precision", "recall", "f1"):
                v = getattr(perf, key)
                if isinstance(v, float):
                    assert c[key][i] == pytest.approx(v)
                else:  # undefined is a gap in the curve, not a 0
                    assert np.isnan(c[key][i])
    dog = views.sweep_curves(mc, tag_id=DOG)
    assert dog["recall"][40] == 0.5 and dog["recall"][50] == 0.0
    fig = views.threshold_sweep(mc, threshold=0.3, tag_id=CAT)
    assert "cat" in fig.axes[0].get_title()
    with pytest.raises(CvlabError, match="unknown tag"):
        views.sweep_curves(mc, tag_id="nope")


def test_confusion_matrices(mc):
    fig = views.confusion_matrix(mc, 0.5)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["1", "0", "0", "1", "0", "1", "0", "1", "1"]
    ml = dict(multiclass_evaluation(), classification_type="Multilabel")
    ml["records"] = [r for r in ml["records"] if r["split"] == "cv"]
    fig = views.confusion_matrix(ml, 0.5)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["TP", "FP", "FN", "TN"]
    # Multilabel at 0.5: cat predicted on i0 (right) and i1 (wrong); dog on i4 (wrong) and missed on i1, i2.
    assert [t.get_text() for t in ax.texts] == ["1", "1", "0", "3", "0", "1", "2", "2"]


def test_confusion_matrix_refuses_detection(det):
    with pytest.raises(CvlabError, match="classification"):
        views.confusion_matrix(det)


def _loader(ids):
    colours = {i: (40 * k % 255, 90, 140) for k, i in enumerate(ids)}
    return lambda image_id: Image.new("RGB", (64, 48), colours[image_id])


def test_mistakes_gallery_detection_draws_boxes(det):
    fig = views.mistakes_gallery(det, _loader(det.image_ids), threshold=0.5)
    axes = [a for a in fig.axes if a.images]
    assert len(axes) == 2
    first, second = axes
    # d0: one right A, one right B, two false A boxes (duplicate + wrong tag); d1: one missed A.
    assert len(first.patches) == 4 and len(second.patches) == 1
    assert first.get_title() == "2 false, 0 missed"
    x, y = first.patches[0].get_xy()
    assert (x, y) == pytest.approx((0.1 * 64, 0.1 * 48))
    only_fn = views.mistakes_gallery(det, _loader(det.image_ids), kind="false_negatives")
    assert len([a for a in only_fn.axes if a.images]) == 1


def test_mistakes_gallery_classification_and_empty(mc):
    fig = views.mistakes_gallery(mc, _loader(mc.image_ids), 0.5)
    titles = [a.get_title() for a in fig.axes if a.images]
    assert titles[0] == "missed: dog 30%\nwrong: cat 60%"
    empty = views.mistakes_gallery(mc, _loader(mc.image_ids), 0.99, kind="false_positives")
    assert "No mistakes" in empty.axes[0].texts[0].get_text()
    with pytest.raises(CvlabError, match="kind"):
        views.mistakes_gallery(mc, _loader(mc.image_ids), kind="wrong")


def test_compare_splits_figure():
    cmp = compare_evaluation_splits(multiclass_evaluation(), 0.5)
    fig = views.compare_splits_figure(cmp)
    precision_ax = fig.axes[0]
    heights = [p.get_height() for p in precision_ax.patches]
    # 3 rows (cat, dog, overall) x 2 splits: self-test first, then held-out.
    assert heights[:3] == pytest.approx([0.5, 0.0, 1 / 3]) and heights[3:] == [1.0, 1.0, 1.0]
    no_hold = dict(multiclass_evaluation())
    no_hold["records"] = [r for r in no_hold["records"] if r["split"] == "cv"]
    fig = views.compare_splits_figure(compare_evaluation_splits(no_hold))
    assert "held-out" in fig.get_suptitle()

"""ThresholdExplorer: moving a slider updates the table and the plot."""
import numpy as np
import pytest

from cvlab.metrics import NO_PREDICTIONS
from cvlab.performance import Evaluation
from cvlab.widgets.explorer import ThresholdExplorer, performance_table
from helpers import CAT, DOG, detection_evaluation, multiclass_evaluation


def _row(html, name):
    """The cells of the table row that starts with ``name``."""
    row = html.split(f"<td>{name}</td>")[1].split("</tr>")[0]
    return [c.split(">")[-1] for c in row.split("</td>")[:-1]]


def test_probability_slider_updates_table_and_plot():
    ex = ThresholdExplorer(multiclass_evaluation())
    assert ex.overlap is None and ex.split.options == (("self-test (2-fold cross-validation)", "cv"),
                                                       ("held-out images", "holdout"))
    assert _row(ex.table.value, "dog") == ["0.0%", "0.0%", "0.0%", "58.3%", "0", "1", "2"]
    png = ex.plot.value
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    ex.threshold.value = 0.4
    assert _row(ex.table.value, "dog") == ["50.0%", "50.0%", "50.0%", "58.3%", "1", "1", "1"]
    assert ex.plot.value != png
    (x,), (y,) = ex._pr[CAT][1].get_data()  # cat's operating point moved with the slider
    perf = Evaluation.from_dict(multiclass_evaluation()).performance(0.4)
    assert (x, y) == (perf.per_tag_performance[0].recall, perf.per_tag_performance[0].precision)
    assert list(ex._sweep["threshold"].get_xdata()) == [0.4, 0.4]
    assert ex.last_update_ms > 0
    ex.threshold.value = 0.99  # nothing predicted: precision is n/a, with the reason as a tooltip
    assert f'title="{NO_PREDICTIONS}"' in ex.table.value


def test_curve_tag_dropdown_switches_the_sweep():
    ex = ThresholdExplorer(multiclass_evaluation(), threshold=0.4)
    png = ex.plot.value
    ex.curve_tag.value = DOG
    assert ex.ax_sweep.get_title() == "P / R / F1 against threshold: dog"
    recall = ex._sweep["lines"]["recall"].get_ydata()
    assert (recall[40], recall[50]) == (0.5, 0.0)  # dog is found at 0.40, not at 0.50
    assert ex.plot.value != png


def test_split_toggle_shows_held_out_numbers():
    ex = ThresholdExplorer(multiclass_evaluation())
    assert "self-test" in ex.table.value and "±25.0%" in ex.table.value  # k-fold std of precision
    ex.split.value = "holdout"
    assert "held-out images, 2 images" in ex.table.value
    assert _row(ex.table.value, "cat")[:2] == ["100.0%", "100.0%"]


def test_overlap_slider_for_detection():
    ex = ThresholdExplorer(detection_evaluation())
    assert ex.overlap is not None and ex.split.layout.display == "none"
    assert _row(ex.table.value, "dog")[:2] == ["100.0%", "100.0%"]
    assert "mAP@[.5:.95]</b> 30.0%" in ex.table.value
    before = ex._pr[CAT][0].get_ydata().copy()
    ex.overlap.value = 0.7  # the dog box overlaps 0.54: now a false positive and a miss
    assert _row(ex.table.value, "dog")[:2] == ["0.0%", "0.0%"]
    assert "overlap 70%" in ex.table.value
    assert np.array_equal(ex._pr[CAT][0].get_ydata(), before)  # cat's exact boxes do not change


def test_from_evaluation_object_and_table_function():
    ev = Evaluation.from_dict(multiclass_evaluation(), "holdout")
    ex = ThresholdExplorer(ev)
    assert ex.split.value == "holdout" and len(ex.split.options) == 1
    html = performance_table(ev.performance(0.5))
    assert ex.table.value == html
    assert "_repr_mimebundle_" in dir(ex)


def test_for_iteration_from_workspace(evaluated_project):  # noqa: F811
    ws, p, it, images, cat, dog = evaluated_project
    ex = ThresholdExplorer.for_iteration(p, it.id, ws=ws, threshold=0.3)
    assert ex.threshold.value == pytest.approx(0.3)
    assert "3 images" in ex.table.value and len(ex.split.options) == 2


def test_labels_say_what_was_measured_and_the_dropdown_shows_its_default():
    """Issue 18 (finding 9): detection used a validation split but was labelled "self-test (cross-validation)",
    and "Curve for" showed a blank box (its value was None)."""
    det = ThresholdExplorer(detection_evaluation())
    assert det.split.options == (("self-test (validation split)", "cv"),)
    assert "self-test (validation split)" in det.table.value
    ex = ThresholdExplorer(multiclass_evaluation())
    assert ex.curve_tag.value == "" and ex.curve_tag.label == "all tags (micro)"
    assert ex.split.style.button_width == "auto"                 # long labels are not cut

"""Hand-computed tiny cases for every metric in cvlab.metrics, and its bad-input errors."""
import numpy as np
import pytest

from cvlab.errors import CvlabError
from cvlab.metrics import (
    NO_PREDICTIONS, NO_TRUTH, DetectionMatcher, Undefined, average_precision, box_iou, check_boxes,
    check_threshold, classification_ap, classification_candidates, classification_prf, counts_at_threshold,
    detection_prf, json_number, mean_defined, pr_curve, prf_from_counts, std_defined, sweep_counts,
)


def test_prf_from_counts_hand_values():
    r = prf_from_counts(3, 1, 2)
    assert (r.precision, r.recall) == (0.75, 0.6)
    assert r.f1 == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    nothing_predicted = prf_from_counts(0, 0, 2)
    assert nothing_predicted.precision == Undefined(NO_PREDICTIONS)
    assert nothing_predicted.recall == 0.0
    assert nothing_predicted.f1 == Undefined(NO_PREDICTIONS)
    no_truth = prf_from_counts(0, 3, 0)
    assert no_truth.precision == 0.0 and no_truth.recall == Undefined(NO_TRUTH)
    all_wrong = prf_from_counts(0, 2, 3)
    assert (all_wrong.precision, all_wrong.recall, all_wrong.f1) == (0.0, 0.0, 0.0)


def test_json_number_and_undefined_helpers():
    assert json_number(Undefined("x")) is None
    assert json_number(np.float32(0.5)) == 0.5
    assert f"{Undefined('x'):.2f}" == "n/a"
    assert mean_defined([0.5, Undefined("a"), 1.0]) == 0.75
    assert isinstance(mean_defined([Undefined("a")]), Undefined)
    assert std_defined([0.2, 0.4, Undefined("a")]) == pytest.approx(0.1)
    assert isinstance(std_defined([0.2]), Undefined)


# Tags: cat, dog, Negative (column 2 is not regular).
TRUTH_MC = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]], bool)
SCORES_MC = np.array([
    [0.8, 0.1, 0.1],    # cat, argmax cat           -> TP cat
    [0.6, 0.3, 0.1],    # dog, argmax cat           -> FP cat, FN dog
    [0.2, 0.45, 0.35],  # dog, argmax dog below 0.5 -> FN dog (TP dog at 0.4)
    [0.1, 0.2, 0.7],    # Negative, argmax Negative -> nothing
    [0.1, 0.7, 0.2],    # Negative, argmax dog      -> FP dog
])
REGULAR = np.array([True, True, False])


def test_multiclass_hand_case():
    tags, overall = classification_prf(TRUTH_MC, SCORES_MC, 0.5, "Multiclass", REGULAR)
    cat, dog = tags
    assert (cat.tp, cat.fp, cat.fn, cat.precision, cat.recall) == (1, 1, 0, 0.5, 1.0)
    assert (dog.tp, dog.fp, dog.fn, dog.precision, dog.recall, dog.f1) == (0, 1, 2, 0.0, 0.0, 0.0)
    assert (overall.tp, overall.fp, overall.fn) == (1, 2, 2)
    assert overall.precision == pytest.approx(1 / 3) and overall.recall == pytest.approx(1 / 3)
    _, dog = classification_prf(TRUTH_MC, SCORES_MC, 0.4, "Multiclass", REGULAR)[0]
    assert (dog.tp, dog.fp, dog.fn, dog.precision, dog.recall) == (1, 1, 1, 0.5, 0.5)
    # At 0.9 nothing is predicted: precision is undefined, not 0.
    _, overall = classification_prf(TRUTH_MC, SCORES_MC, 0.9, "Multiclass", REGULAR)
    assert overall.precision == Undefined(NO_PREDICTIONS) and overall.recall == 0.0


def test_multilabel_hand_case():
    truth = np.array([[1, 1], [0, 1], [0, 0]], bool)
    scores = np.array([[0.9, 0.4], [0.6, 0.7], [0.2, 0.1]])
    (a, b), overall = classification_prf(truth, scores, 0.5, "Multilabel")
    assert (a.tp, a.fp, a.fn) == (1, 1, 0)
    assert (b.tp, b.fp, b.fn) == (1, 0, 1)
    assert (overall.precision, overall.recall) == (2 / 3, 2 / 3)
    # A Negative column never counts as a regular positive.
    truth_n = np.c_[truth, [0, 0, 1]].astype(bool)
    scores_n = np.c_[scores, [0.9, 0.9, 0.9]]
    tags, overall_n = classification_prf(truth_n, scores_n, 0.5, "Multilabel", [True, True, False])
    assert len(tags) == 2 and (overall_n.tp, overall_n.fp, overall_n.fn) == (2, 1, 1)


def test_counts_and_sweep_agree():
    score = np.array([0.9, 0.8, 0.3, 0.6])
    tag = np.array([0, 0, 1, 1])
    correct = np.array([True, False, True, False])
    tp, fp, fn = counts_at_threshold(score, tag, correct, [1, 2], 0.5)
    assert tp.tolist() == [1, 0] and fp.tolist() == [1, 1] and fn.tolist() == [0, 2]
    thresholds = [0.0, 0.3, 0.5, 0.85, 1.0]
    stp, sfp, sfn = sweep_counts(score, tag, correct, [1, 2], thresholds)
    for i, t in enumerate(thresholds):
        e = counts_at_threshold(score, tag, correct, [1, 2], t)
        assert stp[i].tolist() == e[0].tolist() and sfp[i].tolist() == e[1].tolist()
        assert sfn[i].tolist() == e[2].tolist()


def test_average_precision_hand_values():
    score = [0.9, 0.8, 0.7, 0.6]
    # Ranked: right, wrong, right, right; 3 truths. P = 1, 1/2, 2/3, 3/4 at R = 1/3, 1/3, 2/3, 1.
    correct = [True, False, True, True]
    assert average_precision(score, correct, 3, "none") == pytest.approx(1 / 3 + 2 / 9 + 1 / 4)
    assert average_precision(score, correct, 3, "all-point") == pytest.approx(1 / 3 + 2 / 3 * 0.75)
    # 101-point: recall 0..0.33 reads 1.0 (34 points), 0.34..1.0 reads the envelope 0.75 (67 points).
    assert average_precision(score, correct, 3, "101-point") == pytest.approx((34 + 67 * 0.75) / 101)
    # A truth never found caps recall: one hit out of two truths.
    assert average_precision([0.5], [True], 2, "none") == 0.5
    # Ties form one operating point: (P 1/2, R 1/2) then (P 2/3, R 1).
    thr, p, r = pr_curve([0.9, 0.9, 0.5], [True, False, True], 2)
    assert thr.tolist() == [0.9, 0.5] and p.tolist() == [0.5, 2 / 3] and r.tolist() == [0.5, 1.0]
    assert average_precision([0.9, 0.9, 0.5], [True, False, True], 2) == pytest.approx(0.25 + 1 / 3)
    assert average_precision([0.3], [False], 0) == Undefined(NO_TRUTH)
    assert average_precision([], [], 2) == 0.0
    with pytest.raises(CvlabError):
        average_precision(score, correct, 3, "11-point")


def test_classification_ap_ranks_each_tag_over_all_images():
    aps = classification_ap(TRUTH_MC, SCORES_MC, REGULAR)
    # cat scores ranked .8(cat) .6 .2 .1 .1 -> first is right: AP 1.
    assert aps[0] == 1.0
    # dog scores ranked .7(neg) .45(dog) .3(dog) .2 .1 -> P 1/2 at R 1/2, 2/3 at R 1.
    assert aps[1] == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)


def test_box_iou_hand_value():
    iou = box_iou([[0, 0, 0.5, 0.5]], [[0.25, 0.25, 0.5, 0.5], [0.6, 0.6, 0.1, 0.1]])
    assert iou[0, 0] == pytest.approx(0.0625 / 0.4375) and iou[0, 1] == 0.0
    assert box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def _detection_case():
    # image 0: A at (.1,.1,.2,.2), B at (.5,.5,.2,.2); image 1: A at (0,0,.5,.5) never predicted.
    truth = dict(truth_image=[0, 0, 1], truth_tag=[0, 1, 0],
                 truth_boxes=[[.1, .1, .2, .2], [.5, .5, .2, .2], [0, 0, .5, .5]])
    preds = dict(pred_image=[0, 0, 0, 0], pred_tag=[0, 0, 1, 0], pred_score=[0.9, 0.8, 0.7, 0.6],
                 pred_boxes=[[.1, .1, .2, .2],      # A exact -> TP
                             [.1, .1, .2, .2],      # A duplicate -> FP
                             [.56, .5, .2, .2],     # B, IoU .028/.052 = 0.54 -> TP at 0.5, FP at 0.7
                             [.5, .5, .2, .2]])     # A on B's box -> FP (wrong tag)
    return DetectionMatcher(**truth, **preds)


def test_detection_hand_case():
    m = _detection_case()
    assert m.match(0.5).tolist() == [True, False, True, False]
    assert m.match(0.7).tolist() == [True, False, False, False]
    (a, b), overall = detection_prf(m, 2, 0.5, 0.5)
    assert (a.tp, a.fp, a.fn) == (1, 2, 1) and a.precision == pytest.approx(1 / 3) and a.recall == 0.5
    assert (b.tp, b.fp, b.fn, b.precision, b.recall) == (1, 0, 0, 1.0, 1.0)
    assert (overall.tp, overall.fp, overall.fn) == (2, 2, 1)
    (_, b), _ = detection_prf(m, 2, 0.5, 0.7)
    assert (b.tp, b.fp, b.fn) == (0, 1, 1)
    # AP A: ranked right, wrong, wrong with 2 truths -> 0.5; AP B: 1.
    assert m.average_precisions(2, 0.5) == [0.5, 1.0]
    assert m.mean_average_precision(2, (0.5,)) == 0.75
    # At 0.5:0.95 B is right only at IoU 0.50 (1 of 10 thresholds); A's hit is exact, so A keeps 0.5.
    assert m.mean_average_precision(2, np.linspace(0.5, 0.95, 10)) == pytest.approx((0.5 + 0.1) / 2)


def test_detection_greedy_matching_takes_best_unmatched_truth():
    # Two truths side by side; the top prediction overlaps the second one best, the next one the first.
    m = DetectionMatcher([0, 0], [0, 0], [[0, 0, .4, .4], [.3, 0, .4, .4]],
                         [0, 0, 0], [0, 0, 0], [0.9, 0.8, 0.7],
                         [[.3, 0, .4, .4], [.3, 0, .4, .4], [0, 0, .4, .4]])
    # Top box takes truth 1; the duplicate cannot reuse it and overlaps truth 0 by 1/7 -> FP; last takes truth 0.
    assert m.match(0.5).tolist() == [True, False, True]
    assert m.matched_truth(0.5).tolist() == [1, -1, 0]
    # At a low overlap threshold the duplicate grabs truth 0 first (greedy by score), leaving the last box FP.
    assert m.match(0.1).tolist() == [True, True, False]


def test_bad_inputs_get_clear_errors():
    with pytest.raises(CvlabError, match="outside the image") as e:
        check_boxes([[0.9, 0.1, 0.2, 0.2]])
    assert e.value.code == "BadRequestInvalid" and e.value.status == 400
    # float rounding at the border is tolerated (as cvlab.datasets.coords does)
    assert check_boxes([[0.5, 0.5, 0.5000001, 0.5]]).shape == (1, 4)
    with pytest.raises(CvlabError, match="negative width"):
        check_boxes([[0.1, 0.1, -0.2, 0.2]])
    with pytest.raises(CvlabError, match="between 0 and 1"):
        check_threshold(50)
    with pytest.raises(CvlabError, match="number"):
        check_threshold("high")
    with pytest.raises(CvlabError, match=r"\[0, 1\]"):
        classification_prf(np.eye(2, dtype=bool), [[1.2, 0], [0, 1]], 0.5, "Multiclass")
    with pytest.raises(CvlabError, match="one tag per image"):
        classification_candidates(np.ones((2, 2), bool), np.full((2, 2), 0.5), "Multiclass")
    with pytest.raises(CvlabError, match="Multiclass"):
        classification_candidates(np.eye(2, dtype=bool), np.eye(2), "Binary")
    with pytest.raises(CvlabError, match="same shape"):
        classification_candidates(np.eye(2, dtype=bool), np.eye(3), "Multilabel")
    with pytest.raises(CvlabError, match="same length"):
        DetectionMatcher([0], [0, 1], [[0, 0, .1, .1]], [], [], [], np.zeros((0, 4)))
    with pytest.raises(CvlabError, match="overlap threshold"):
        _detection_case().match(1.5)

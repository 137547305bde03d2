"""IterationPerformance / TagPerformance / ImagePerformance on in-memory evaluation dicts (hand-computed)."""
import json

import numpy as np
import pytest

from cvlab.errors import CvlabError
from cvlab.metrics import NO_PREDICTIONS, NO_TRUTH, Undefined
from cvlab.performance import (
    NO_FOLDS, NO_HOLDOUT, ONE_FOLD, Evaluation, compare_evaluation_splits, performance_from_records,
)
from helpers import CAT, DOG, NEG, TAGS, detection_evaluation, evaluation_record, multiclass_evaluation

def test_multiclass_iteration_performance_hand_values():
    perf = Evaluation.from_dict(multiclass_evaluation()).performance(0.5)
    cat, dog = perf.per_tag_performance
    assert [t.name for t in perf.per_tag_performance] == ["cat", "dog"]  # Negative has no row
    assert (cat.precision, cat.recall, dog.precision, dog.recall) == (0.5, 1.0, 0.0, 0.0)
    assert (cat.true_positives, cat.false_positives, cat.false_negatives) == (1, 1, 0)
    assert perf.precision == pytest.approx(1 / 3) and perf.recall == pytest.approx(1 / 3)
    # Folds: overall P = [1/2, 0], R = [1/2, 0] -> population std 0.25.
    assert perf.precision_std_deviation == pytest.approx(0.25)
    assert perf.recall_std_deviation == pytest.approx(0.25)
    # cat: fold 1 has no cat at all -> only one fold with a value; dog recall is 0 in both folds.
    assert isinstance(cat.precision_std_deviation, Undefined)
    assert dog.recall_std_deviation == 0.0
    # AP: cat 1; dog ranks .7(neg) .45(dog) .3(dog) .2 .1 -> 1/2*1/2 + 1/2*2/3.
    assert cat.average_precision == 1.0
    assert dog.average_precision == pytest.approx(7 / 12)
    assert perf.average_precision == pytest.approx((1 + 7 / 12) / 2)
    assert perf.image_count == 5 and perf.split == "cv" and perf.overlap_threshold is None
    assert perf.map_50_95 is None


def test_threshold_changes_the_numbers():
    ev = Evaluation.from_dict(multiclass_evaluation())
    low = ev.performance(0.4)
    dog = low.per_tag_performance[1]
    assert (dog.true_positives, dog.false_positives, dog.false_negatives) == (1, 1, 1)
    high = ev.performance(0.95)
    assert high.precision == Undefined(NO_PREDICTIONS) and high.recall == 0.0
    assert high.average_precision == ev.performance(0.1).average_precision  # AP ignores the threshold


def test_pure_function_matches_evaluation_object():
    ev = multiclass_evaluation()
    cv = [r for r in ev["records"] if r["split"] == "cv"]
    perf = performance_from_records(cv, TAGS, "Classification", "Multiclass", threshold=0.5)
    assert perf.to_dict() == Evaluation.from_dict(ev).performance(0.5).to_dict()


def test_to_dict_is_json_with_null_for_undefined_and_reasons():
    perf = Evaluation.from_dict(multiclass_evaluation()).performance(0.95)
    d = json.loads(json.dumps(perf.to_dict()))
    assert d["precision"] is None and d["undefined_reasons"]["precision"] == NO_PREDICTIONS
    assert d["recall"] == 0.0
    assert list(d)[:6] == ["per_tag_performance", "precision", "precision_std_deviation", "recall",
                           "recall_std_deviation", "average_precision"]
    assert list(d["per_tag_performance"][0])[:7] == ["id", "name", "precision", "precision_std_deviation",
                                                    "recall", "recall_std_deviation", "average_precision"]
    frame = perf.to_frame()
    assert list(frame.index) == ["cat", "dog", "(overall)"]
    assert "n/a" in perf._repr_html_()


def test_holdout_and_compare_splits():
    ev = multiclass_evaluation()
    hold = Evaluation.from_dict(ev, "holdout").performance(0.5)
    assert (hold.precision, hold.recall, hold.image_count) == (1.0, 1.0, 2)
    assert hold.precision_std_deviation == Undefined(NO_FOLDS)
    cmp = compare_evaluation_splits(ev, 0.5)
    assert cmp.self_test.precision == pytest.approx(1 / 3) and cmp.holdout.precision == 1.0
    frame = cmp.to_frame()
    assert frame.loc["(overall)", ("precision", "held-out")] == 1.0
    assert frame.loc["(overall)", ("precision", "self-test (cv)")] == pytest.approx(1 / 3)
    no_hold = dict(ev, records=[r for r in ev["records"] if r["split"] == "cv"])
    cmp2 = compare_evaluation_splits(no_hold)
    assert cmp2.holdout is None and cmp2.holdout_reason == NO_HOLDOUT
    assert "held-out" not in str(cmp2.to_frame().columns) and NO_HOLDOUT in cmp2._repr_html_()
    json.dumps(cmp.to_dict())


def test_multilabel_with_missing_prediction_counts_as_zero():
    tags = TAGS[:2]
    recs = [{"image_id": "a", "split": "cv", "fold": 0, "truth": {"tag_ids": [CAT, DOG]},
             "predictions": [{"tag_id": CAT, "probability": 0.9}]},          # dog missing -> 0 -> FN
            {"image_id": "b", "split": "cv", "fold": 1, "truth": {"tag_ids": []},
             "predictions": [{"tag_id": CAT, "probability": 0.2}, {"tag_id": DOG, "probability": 0.6}]}]
    perf = performance_from_records(recs, tags, "Classification", "Multilabel")
    cat, dog = perf.per_tag_performance
    assert (cat.precision, cat.recall, dog.precision, dog.recall) == (1.0, 1.0, 0.0, 0.0)
    # fold 0: P 1, R 1/2; fold 1: P 0, R undefined (no truths in that fold).
    assert perf.precision_std_deviation == pytest.approx(0.5)
    assert isinstance(perf.recall_std_deviation, Undefined)


def test_image_performances_filter_and_paging():
    ev = Evaluation.from_dict(multiclass_evaluation())
    all_ = ev.image_performances()
    assert [p.id for p in all_] == ["i0", "i1", "i2", "i3", "i4"]
    dogs = ev.image_performances(tag_ids=[DOG])
    assert [p.id for p in dogs] == ["i1", "i2"]
    assert dogs[0].tags == [{"tag_id": DOG, "tag_name": "dog"}]
    assert [p["tag_name"] for p in dogs[0].predictions] == ["cat", "dog", "Negative"]  # highest first
    assert [p.id for p in ev.image_performances(take=2, skip=1)] == ["i1", "i2"]
    json.dumps(dogs[0].to_dict())
    with pytest.raises(CvlabError):
        ev.image_performances(take=-1)


def test_mistakes_and_confusion_matrix():
    ev = Evaluation.from_dict(multiclass_evaluation())
    mistakes = ev.mistakes(0.5)
    assert [m["image_id"] for m in mistakes] == ["i1", "i2", "i4"]  # i1 has two errors
    assert [x["tag_name"] for x in mistakes[0]["false_positives"]] == ["cat"]
    assert [x["tag_name"] for x in mistakes[0]["false_negatives"]] == ["dog"]
    names, cm = ev.confusion(0.5)
    assert names == ["cat", "dog", "(none)"]
    # rows truth, columns predicted: cat->cat; dog->cat, dog->none; none->none, none->dog
    assert cm.tolist() == [[1, 0, 0], [1, 0, 1], [0, 1, 1]]


def test_detection_performance_hand_values():
    ev = Evaluation.from_dict(detection_evaluation())
    perf = ev.performance(0.5, 0.5)
    a, b = perf.per_tag_performance
    assert (a.true_positives, a.false_positives, a.false_negatives) == (1, 2, 1)
    assert (b.precision, b.recall) == (1.0, 1.0)
    assert (perf.precision, perf.recall) == (0.5, 2 / 3)
    assert (a.average_precision, b.average_precision, perf.average_precision) == (0.5, 1.0, 0.75)
    assert perf.map_50_95 == pytest.approx(0.3)
    assert perf.precision_std_deviation == Undefined(ONE_FOLD)
    assert perf.overlap_threshold == 0.5
    strict = ev.performance(0.5, 0.7)  # B's box overlaps 0.54 only
    assert strict.per_tag_performance[1].recall == 0.0 and strict.average_precision == 0.25
    m = ev.mistakes(0.5, 0.5)
    assert [x["image_id"] for x in m] == ["d0", "d1"]
    assert len(m[0]["false_positives"]) == 2 and m[0]["false_positives"][0]["box"] == [.1, .1, .2, .2]
    assert m[1]["false_negatives"][0]["tag_name"] == "cat"
    curves = ev.pr_curves(0.5)
    assert curves[CAT][1].tolist() == [1.0, 0.5, 1 / 3]
    with pytest.raises(CvlabError, match="multiclass"):
        ev.confusion()


def test_bad_evaluations_get_clear_errors():
    ev = multiclass_evaluation()
    with pytest.raises(CvlabError, match="unknown tag id") as e:
        performance_from_records([evaluation_record("x", ["nope"], [0.5, 0.3, 0.2], 0)], TAGS, "Classification",
                                 "Multiclass")
    assert e.value.code == "BadRequestInvalidIds"
    with pytest.raises(CvlabError, match="no evaluated images"):
        performance_from_records([], TAGS, "Classification", "Multiclass")
    with pytest.raises(CvlabError, match="holdout"):
        Evaluation.from_dict(dict(ev, records=ev["records"][:5]), "holdout")
    with pytest.raises(CvlabError, match="split"):
        Evaluation.from_dict(ev, "train")
    with pytest.raises(CvlabError, match="malformed"):
        Evaluation.from_dict({"records": []})
    with pytest.raises(CvlabError, match="classification_type"):
        Evaluation.from_dict(dict(ev, classification_type=None))
    with pytest.raises(CvlabError, match=r"\[0, 1\]"):
        performance_from_records([evaluation_record("x", [CAT], [1.5, 0, 0], 0)], TAGS, "Classification", "Multiclass")
    with pytest.raises(CvlabError, match="between 0 and 1"):
        Evaluation.from_dict(ev).performance(threshold=50)
    with pytest.raises(CvlabError, match="fold"):
        Evaluation.from_dict(dict(ev, records=[dict(ev["records"][0], fold="first")]))
    det = detection_evaluation()
    det["records"][0]["truth"]["regions"][0]["width"] = -0.1
    with pytest.raises(CvlabError, match="negative width"):
        Evaluation.from_dict(det)
    det = detection_evaluation()
    det["records"][0]["predictions"][0]["bounding_box"] = {"left": 0.9, "top": 0, "width": 0.5, "height": 0.1}
    with pytest.raises(CvlabError, match="outside the image"):
        Evaluation.from_dict(det)
    det = detection_evaluation()
    det["records"][0]["predictions"][0]["bounding_box"] = None
    with pytest.raises(CvlabError, match="no bounding_box"):
        Evaluation.from_dict(det)


def test_many_images_stay_consistent_with_per_fold_numbers():
    """Randomised: pooled counts equal the sum of per-fold counts, whatever the threshold."""
    rng = np.random.default_rng(0)
    recs = []
    for i in range(60):
        s = rng.dirichlet([1, 1, 1])
        recs.append(evaluation_record(f"r{i}", [(CAT, DOG, NEG)[rng.integers(3)]], s.tolist(), i % 3))
    ev = Evaluation(recs, TAGS, "Classification", "Multiclass")
    for t in (0.0, 0.3, 0.6, 1.0):
        pooled = np.array(ev.counts(t))
        assert (pooled == sum(np.array(ev.counts(t, fold=f)) for f in range(3))).all()

"""Active learning: uncertainty, stored-prediction queries, adding predictions to training, suggestions."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from cvlab import active
from cvlab.errors import CvlabError
from helpers import make_image_bytes


# ------------------------------------------------------------------------------------------------ uncertainty
def _cls(*probs):
    return [{"tag_id": f"t{i}", "probability": p, "bounding_box": None} for i, p in enumerate(probs)]


def _boxes(*probs):
    box = {"left": 0.1, "top": 0.1, "width": 0.2, "height": 0.2}
    return [{"tag_id": "t0", "probability": p, "bounding_box": box} for p in probs]


def test_multiclass_uncertainty_is_one_minus_margin():
    assert active.prediction_uncertainty(_cls(0.98, 0.01, 0.01), "Multiclass") == pytest.approx(0.03)
    assert active.prediction_uncertainty(_cls(0.45, 0.44, 0.11), "Multiclass") == pytest.approx(0.99)
    assert active.prediction_uncertainty(_cls(0.5, 0.5), "Multiclass") == pytest.approx(1.0)
    # order of the list does not matter, the two highest probabilities do
    assert active.prediction_uncertainty(_cls(0.1, 0.3, 0.6), "Multiclass") == pytest.approx(0.7)


def test_multilabel_uncertainty_is_the_most_undecided_tag():
    assert active.prediction_uncertainty(_cls(0.99, 0.01, 0.02), "Multilabel") == pytest.approx(0.04)
    assert active.prediction_uncertainty(_cls(0.99, 0.5, 0.02), "Multilabel") == pytest.approx(1.0)
    assert active.prediction_uncertainty(_cls(0.7, 0.2), "Multilabel") == pytest.approx(0.6)


def test_detection_uncertainty_is_one_minus_the_top_box():
    assert active.prediction_uncertainty(_boxes(0.97, 0.55, 0.01), "ObjectDetection") == pytest.approx(0.03)
    assert active.prediction_uncertainty(_boxes(0.45, 0.6, 0.3), "ObjectDetection") == pytest.approx(0.4)
    assert active.prediction_uncertainty(_boxes(0.02), "ObjectDetection") == 1.0  # below the floor: sees nothing
    assert active.prediction_uncertainty([], "ObjectDetection") == 1.0


def test_detection_suggestions_rank_by_clearly_seen_objects():
    """The smart labeler ranks detection images by their summed squared box probability: a busy scene first,
    an empty frame (only noise boxes) last, although ``1 - top box`` calls the empty frame the most uncertain;
    one clear worker outranks a cluttered empty frame's many weak false positives."""
    busy, unsure, empty = _boxes(0.9, 0.8, 0.5), _boxes(0.45), _boxes(0.12, 0.06, 0.02)
    scores = [active.suggestion_score(b, "ObjectDetection") for b in (busy, unsure, empty)]
    assert scores == pytest.approx([1.70, 0.2025, 0.018])  # 0.02 is below the floor
    one_worker, clutter = _boxes(0.9), _boxes(*[0.3] * 6)
    assert active.suggestion_score(one_worker, "ObjectDetection") > active.suggestion_score(clutter, "ObjectDetection")
    assert active.prediction_uncertainty(empty, "ObjectDetection") > active.prediction_uncertainty(
        busy, "ObjectDetection")
    assert active.suggestion_score([], "ObjectDetection") == 0.0
    assert active.suggestion_score(_cls(0.5, 0.5), "Multiclass") == 1.0  # classification: the uncertainty
    with pytest.raises(CvlabError):
        active.suggestion_score(_boxes(1.5), "ObjectDetection")


def test_stored_detection_predictions_suggested_order(ws):
    from cvlab.domains import find_domain

    p = ws.create_project("cam", domain_id=find_domain("General (compact)", "ObjectDetection").id)
    tag = ws.create_tag(p.id, "person")
    stored = []
    for i, probs in enumerate([(0.12, 0.06), (0.9, 0.8, 0.5), (0.45,)]):  # empty frame, busy scene, one unsure
        box = {"left": 0.1, "top": 0.1, "width": 0.2, "height": 0.2}
        stored.append(ws.store_prediction(p.id, None, make_image_bytes(64, 64, seed=40 + i), [
            {"tag_id": tag.id, "tag_name": "person", "probability": q, "bounding_box": box} for q in probs]).id)
    assert _ids(active.query_predictions(ws, p.id, {"orderBy": "Suggested"})) == [stored[1], stored[2], stored[0]]


def test_ranking_puts_the_most_uncertain_first_and_is_stable():
    images = {"sure": _cls(0.9, 0.05, 0.05), "torn": _cls(0.5, 0.48, 0.02), "mid": _cls(0.7, 0.3, 0.0),
              "tie": _cls(0.7, 0.3, 0.0)}
    ranked = active.rank_by_uncertainty(images, lambda k: active.prediction_uncertainty(images[k], "Multiclass"))
    assert ranked == ["torn", "mid", "tie", "sure"]
    up = active.rank_by_uncertainty(images, lambda k: active.prediction_uncertainty(images[k], "Multiclass"),
                                    descending=False)
    assert up == ["sure", "mid", "tie", "torn"]


def test_bad_probabilities_and_kinds_are_refused():
    with pytest.raises(CvlabError) as e:
        active.prediction_uncertainty(_cls(1.5), "Multiclass")
    assert e.value.code == "BadRequestInvalid"
    with pytest.raises(CvlabError, match="Multiclass, Multilabel or ObjectDetection"):
        active.prediction_uncertainty(_cls(0.5), "Regression")


def test_spread_order_skips_near_copies_and_covered_ground():
    eye = np.eye(16)                             # equidistant images: only uncertainty and copies matter
    cand = eye[:6].copy()
    cand[1] = cand[0] + 1e-4                     # a near-copy of the most uncertain image
    known = np.vstack([cand[2] + 1e-4, eye[10:14]])  # image 2 is next to a labelled one
    u = [0.90, 0.89, 0.88, 0.50, 0.40, 0.30]
    order = active.spread_order(u, cand, known)
    assert order == [0, 3, 4, 5, 1, 2]  # copies and covered images wait for the end
    assert active.spread_order(u, cand, known, power=0) == [0, 1, 2, 3, 4, 5]  # plain uncertainty order
    head = active.spread_order(u, cand, known, head=2)
    assert head[:2] == order[:2] and head[2:] == [i for i in range(6) if i not in order[:2]]
    assert active.spread_order(u, cand, known) == order  # deterministic (pages agree)
    assert active.spread_order(u, cand, np.zeros((0, 16)))[:3] == [0, 2, 3]


# ------------------------------------------------------------------------------------- stored predictions
@pytest.fixture
def stored(ws):
    """A classification project with tags a, b and five stored predictions made at distinct times."""
    p = ws.create_project("stored")
    a, b = ws.create_tag(p.id, "a"), ws.create_tag(p.id, "b")
    neg = ws.create_tag(p.id, "nothing", type="Negative")
    probs = [(0.95, 0.05), (0.55, 0.45), (0.20, 0.80), (0.60, 0.40), (0.05, 0.95)]
    apps = ["cam1", "cam1", "cam2", None, "cam2"]
    preds = []
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    for i, ((pa, pb), app) in enumerate(zip(probs, apps)):
        preds.append(ws.store_prediction(p.id, None, make_image_bytes(64, 64, seed=i),
                                         [{"tag_id": a.id, "tag_name": "a", "probability": pa, "bounding_box": None},
                                          {"tag_id": b.id, "tag_name": "b", "probability": pb, "bounding_box": None}],
                                         application=app, created=start + timedelta(seconds=i)))  # any clock
    return ws, p, a, b, neg, preds


def _ids(result):
    return [sp.id for sp in result.results]


def test_query_orders_newest_oldest_and_suggested(stored):
    ws, p, a, b, _, preds = stored
    ids = [sp.id for sp in preds]
    assert _ids(active.query_predictions(ws, p.id, {})) == ids[::-1]
    assert _ids(active.query_predictions(ws, p.id, {"orderBy": "Oldest"})) == ids
    # margins: 0.90, 0.10, 0.60, 0.20, 0.90 -> most uncertain first, ties newest first
    assert _ids(active.query_predictions(ws, p.id, {"orderBy": "Suggested"})) == [ids[i] for i in (1, 3, 2, 4, 0)]


def test_query_filters_tags_application_and_time(stored):
    ws, p, a, b, _, preds = stored
    ids = [sp.id for sp in preds]
    r = active.query_predictions(ws, p.id, {"tags": [{"id": a.id, "minThreshold": 0.5, "maxThreshold": 1.0}],
                                            "orderBy": "Oldest"})
    assert _ids(r) == [ids[0], ids[1], ids[3]]
    both = [{"id": a.id, "minThreshold": 0.5}, {"id": b.id, "minThreshold": 0.42}]
    assert _ids(active.query_predictions(ws, p.id, {"tags": both, "orderBy": "Oldest"})) == [ids[1]]
    assert set(_ids(active.query_predictions(ws, p.id, {"application": "cam2"}))) == {ids[2], ids[4]}
    window = {"startTime": preds[1].created.isoformat(), "end_time": preds[3].created, "orderBy": "Oldest"}
    assert _ids(active.query_predictions(ws, p.id, window)) == ids[1:4]
    later = (preds[-1].created + timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    assert active.query_predictions(ws, p.id, {"startTime": later}).results == []


def test_query_pages_with_continuation(stored):
    ws, p, *_ , preds = stored
    token, seen = {"orderBy": "Suggested", "maxCount": 2}, []
    pages = 0
    while True:
        r = active.query_predictions(ws, p.id, token)
        assert len(r.results) <= 2 and r.token["maxCount"] == 2
        seen += _ids(r)
        pages += 1
        if not r.token["continuation"]:
            break
        token = r.token  # sent back unchanged, as the SDK does
    assert pages == 3
    assert seen == _ids(active.query_predictions(ws, p.id, {"orderBy": "Suggested"}))


@pytest.mark.parametrize("token, code", [
    ({"orderBy": "Random"}, "BadRequestPredictionInvalidQueryParameters"),
    ({"maxCount": 0}, "BadRequestPredictionResultsExceededCount"),
    ({"maxCount": 257}, "BadRequestPredictionResultsExceededCount"),
    ({"continuation": "not-a-token"}, "BadRequestPredictionInvalidQueryParameters"),
    ({"startTime": "yesterday"}, "BadRequestPredictionInvalidQueryParameters"),
    ({"orderby": "Newest"}, "BadRequestPredictionInvalidQueryParameters"),
    ({"tags": [{"id": "00000000-0000-0000-0000-000000000000"}]}, "NotFoundTag"),
])
def test_bad_query_tokens_say_what_to_fix(stored, token, code):
    ws, p, *_ = stored
    with pytest.raises(CvlabError) as e:
        active.query_predictions(ws, p.id, token)
    assert e.value.code == code


def test_query_refuses_more_than_two_tags_and_inverted_ranges(stored):
    ws, p, a, b, neg, _ = stored
    with pytest.raises(CvlabError) as e:
        active.query_predictions(ws, p.id, {"tags": [{"id": a.id}, {"id": b.id}, {"id": neg.id}]})
    assert e.value.code == "BadRequestPredictionTagsExceededCount"
    with pytest.raises(CvlabError, match="minThreshold <= maxThreshold"):
        active.query_predictions(ws, p.id, {"tags": [{"id": a.id, "minThreshold": 0.8, "maxThreshold": 0.2}]})


def test_add_prediction_to_training_with_corrected_tags(stored):
    ws, p, a, b, neg, preds = stored
    # the model said "a" (0.55) on preds[1]; the learner corrects it to "b"
    summary = active.add_predictions_to_training(ws, p.id, [(preds[1].id, [b.id], None),
                                                            {"id": preds[2].id, "tag_ids": [b.id]}])
    assert summary.is_batch_successful
    assert [r.status for r in summary.images] == ["OK", "OK"]
    img = ws.get_image(p.id, summary.images[0].image.id)
    assert img.tag_ids == [b.id] and img.sha256 == preds[1].sha256
    assert ws.get_image_count(p.id, tagging_status="Tagged") == 2
    # the stored prediction is still there (it expires on its own)
    assert ws.get_prediction(p.id, preds[1].id).id == preds[1].id


def test_add_prediction_enforces_image_rules(stored):
    ws, p, a, b, neg, preds = stored
    summary = active.add_predictions_to_training(ws, p.id, [(preds[0].id, [a.id, neg.id], None)])
    assert not summary.is_batch_successful
    assert summary.images[0].status == "ErrorNegativeAndRegularTagOnSameImage"
    assert ws.get_image_count(p.id) == 0
    with pytest.raises(CvlabError) as e:
        active.add_predictions_to_training(ws, p.id, [(preds[0].id, [a.id], None),
                                                      ("11111111-1111-1111-1111-111111111111", [a.id], None)])
    assert e.value.code == "NotFound" and "nothing was added" in e.value.message
    assert ws.get_image_count(p.id) == 0


def test_add_detection_prediction_with_corrected_regions(ws):
    from cvlab.domains import find_domain

    p = ws.create_project("site", domain_id=find_domain("General (compact)", "ObjectDetection").id)
    helmet, person = ws.create_tag(p.id, "helmet"), ws.create_tag(p.id, "person")
    box = {"left": 0.2, "top": 0.1, "width": 0.3, "height": 0.6}
    sp = ws.store_prediction(p.id, None, make_image_bytes(96, 96, seed=7),
                             [{"tag_id": helmet.id, "probability": 0.6, "bounding_box": box}])
    fixed = [dict(box, tag_id=person.id), {"tag_id": helmet.id, "left": 0.3, "top": 0.1, "width": 0.1, "height": 0.1}]
    summary = active.add_predictions_to_training(ws, p.id, [(sp.id, None, fixed)])
    assert summary.images[0].status == "OK"
    regions = ws.get_image(p.id, summary.images[0].image.id).regions
    assert sorted(r.tag_id for r in regions) == sorted([person.id, helmet.id])
    assert min(r.width for r in regions) == pytest.approx(0.1)

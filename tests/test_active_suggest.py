"""Smart-labeler suggestions on a tiny trained project (Quick training on `parts`), and the learning curve."""
from __future__ import annotations

import json

import pytest

from cvlab import active
from cvlab.experiments import active_learning
from cvlab.errors import CvlabError


class CountingPredictor:
    """The real Predictor, counting the images it is asked about (to see the cache work)."""

    def __init__(self, predictor):
        self.predictor, self.images = predictor, 0

    def predict_batch(self, images):
        self.images += len(images)
        return self.predictor.predict_batch(images)


@pytest.fixture(scope="module")
def pool_model(trained_parts_pool):
    """The shared parts pool with a torch predictor that counts the images it is asked about."""
    from cvlab.predict import Predictor

    ws, p, it, tags, pool = trained_parts_pool
    return ws, p, it, tags, pool, CountingPredictor(Predictor.load(ws, it.id, backend="torch"))


def test_suggestions_carry_predictions_and_uncertainty(pool_model):
    ws, p, it, tags, pool, predictor = pool_model
    ids = sorted(pool)[:3]
    found = active.suggest_tags_and_regions(ws, p.id, it.id, ids, predictor=predictor)
    assert [s.id for s in found] == ids
    for s in found:
        assert s.project_id == p.id and s.iteration_id == it.id and s.created is not None
        assert {x["tag_id"] for x in s.predictions} == set(tags.values())
        assert sum(x["probability"] for x in s.predictions) == pytest.approx(1.0, abs=1e-3)
        assert s.prediction_uncertainty == pytest.approx(active.prediction_uncertainty(s.predictions, "Multiclass"))
        assert 0.0 <= s.prediction_uncertainty <= 1.0


def test_predictions_are_cached_per_iteration_and_image(pool_model):
    ws, p, it, tags, pool, predictor = pool_model
    before = predictor.images
    active.query_suggested_images(ws, p.id, it.id, predictor=predictor)
    computed = predictor.images - before
    assert computed <= len(pool)
    files = list((ws.iteration_dir(it.id) / "suggestions").glob("*.json"))
    assert len(files) == len(pool)
    active._memory.clear()  # a new process: the disk cache answers
    active.query_suggested_images(ws, p.id, it.id, predictor=predictor)
    active.suggest_tags_and_regions(ws, p.id, it.id, sorted(pool), predictor=predictor)
    assert predictor.images - before == computed


def test_query_suggested_images_orders_and_pages(pool_model, monkeypatch):
    ws, p, it, tags, pool, predictor = pool_model
    from cvlab import embeddings

    down = active.query_suggested_images(ws, p.id, it.id, predictor=predictor)
    u = [s.prediction_uncertainty for s in down.results]
    assert sorted(s.id for s in down.results) == sorted(pool)
    # the smart labeler's order: uncertainty spread over the embeddings (known = the 20 training images)
    tagged = list(ws.iter_images(p.id, tagging_status="Tagged"))
    vectors = embeddings.embed_images(ws, [s.image for s in down.results] + tagged, "lite0", 224)
    assert active.spread_order(u, vectors[:len(u)], vectors[len(u):]) == list(range(len(u)))
    monkeypatch.setattr(active.uncertainty, "DIVERSITY", 0.0)
    plain = active.query_suggested_images(ws, p.id, it.id, predictor=predictor)
    assert [s.prediction_uncertainty for s in plain.results] == sorted(u, reverse=True)
    monkeypatch.undo()
    assert down.token["continuation"] is None and down.token["sortBy"] == "UncertaintyDescending"
    up = active.query_suggested_images(ws, p.id, it.id, sort_by="UncertaintyAscending", predictor=predictor)
    assert [s.prediction_uncertainty for s in up.results] == sorted(u)
    seen, token = [], {}
    while True:
        page = active.query_suggested_images(ws, p.id, it.id, max_count=3, predictor=predictor,
                                             continuation=token.get("continuation"), session=token.get("session"))
        seen += [s.id for s in page.results]
        token = page.token
        if not token["continuation"]:
            break
    assert seen == [s.id for s in down.results]


def test_threshold_and_tag_filters_match_the_counts(pool_model):
    ws, p, it, tags, pool, predictor = pool_model
    rusted = tags["rusted"]
    hits = active.query_suggested_images(ws, p.id, it.id, tag_ids=[rusted], threshold=0.5, predictor=predictor)
    for s in hits.results:
        assert any(x["tag_id"] == rusted and x["probability"] >= 0.5 for x in s.predictions)
    counts = active.query_suggested_image_count(ws, p.id, it.id, threshold=0.5, predictor=predictor)
    assert set(counts) == set(tags.values())
    assert counts[rusted] == len(hits.results)
    every = active.query_suggested_images(ws, p.id, it.id, predictor=predictor).results
    for t in tags.values():
        assert counts[t] == sum(any(x["tag_id"] == t and x["probability"] >= 0.5 for x in s.predictions)
                                for s in every)
    assert sum(counts.values()) <= len(pool)  # multiclass: at most one tag per image is above 0.5
    assert active.query_suggested_image_count(ws, p.id, it.id, predictor=predictor)[rusted] == len(pool)


def test_suggestion_errors_say_what_to_fix(pool_model):
    ws, p, it, tags, pool, predictor = pool_model
    with pytest.raises(CvlabError) as e:
        active.suggest_tags_and_regions(ws, p.id, it.id, ["22222222-2222-2222-2222-222222222222"])
    assert e.value.code == "NotFoundImage"
    with pytest.raises(CvlabError) as e:
        active.suggest_tags_and_regions(ws, p.id, it.id, sorted(pool) * 9)
    assert e.value.code == "BadRequestImageBatch"
    with pytest.raises(CvlabError) as e:
        active.query_suggested_images(ws, p.id, it.id, sort_by="Newest")
    assert e.value.code == "BadRequestInvalid"
    with pytest.raises(CvlabError) as e:
        active.query_suggested_images(ws, p.id, it.id, threshold=1.5)
    assert e.value.code == "BadRequestInvalid"
    training = ws.create_iteration(p.id, name="in progress", status="Training")
    with pytest.raises(CvlabError) as e:
        active.suggest_tags_and_regions(ws, p.id, training.id, sorted(pool)[:1])
    assert e.value.code == "BadRequestIterationIsNotTrained"
    ws.delete_iteration(p.id, training.id)


def test_learning_curve_tiny_runs_both_strategies(pool_model):
    """The notebook-07 call at toy size: one seed, one round; curves are well-formed and the projects real.
    Same data seed and size as the fixture, so most embeddings are already cached in its workspace."""
    ws = pool_model[0]
    out = active_learning.learning_curve("parts", rounds=1, per_round=4, pool_size=6, test_size=8, seeds=(0,),
                                data_seed=3, image_size=96, workspace=ws, backend="torch", progress=False,
                                random_draws=2)
    assert out["metric"] == "F1@0.5" and out["settings"]["start_per_tag"] == 5
    for strategy in ("uncertainty", "random"):
        curve = out["curves"][strategy]
        assert curve["labelled"] == [20, 24]
        assert len(curve["runs"]) == 1 and len(curve["mean"]) == 2
        assert all(v is None or 0.0 <= v <= 1.0 for v in curve["mean"])
    # both strategies share round 0
    assert out["curves"]["uncertainty"]["mean"][0] == out["curves"]["random"]["mean"][0]
    projects = [p for p in ws.get_projects() if p.name.startswith("al parts seed 0")]
    assert len(projects) == 3  # uncertainty, random and random's second draw (random#1)
    for p in projects:
        assert ws.get_image_count(p.id, tagging_status="Untagged") == 2  # 6 in the pool, 4 labelled
        assert ws.get_image_count(p.id, tagging_status="Tagged") == 20 + 8 + 4
        assert len(ws.get_images(p.id, filter="holdout eq 'true'", take=50)) == 8
    assert "uncertainty_minus_random" in json.dumps(out) and out["settings"]["random_draws"] == 2
    # the random curve is the mean of its draws' held-out scores
    from cvlab.performance import get_iteration_performance

    draws = [p for p in projects if p.name.split()[4].startswith("random")]
    scores = [get_iteration_performance(ws, p.id, max(ws.get_iterations(p.id), key=lambda i: i.created).id,
                                        split="holdout").f1 for p in draws]
    assert out["curves"]["random"]["mean"][1] == pytest.approx(sum(scores) / 2)
    # random labels the seeded draw from the pool in generated order, so a rerun draws the same images
    import numpy as np

    from cvlab import datasets

    records = datasets.generate("parts", 8 + 6 + 2 * 5 * 4, seed=3, size=96)
    initial, test, pool = active_learning._split(records, datasets.info("parts").tags, 5, 8, 6, 0)
    drawn = {records[sorted(pool)[i]].name for i in np.random.default_rng([0, 1]).choice(6, 4, replace=False)}
    random_project = next(p for p in projects if p.name.split()[4] == "random")
    fixed = {records[i].name for i in initial + test}
    labelled = {im.original_name for im in ws.iter_images(random_project.id, tagging_status="Tagged")}
    assert labelled - fixed == drawn
    with pytest.raises(CvlabError, match="pool"):
        active_learning.learning_curve("parts", rounds=2, per_round=4, pool_size=6, workspace=ws, progress=False)


@pytest.mark.slow
def test_learning_curve_detection_with_empty_frames(tmp_path, monkeypatch):
    """Detection at toy size (1 epoch): half the pool is empty frames, and the oracle deletes those it is shown."""
    from cvlab import datasets
    from cvlab.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    out = active_learning.learning_curve("site", rounds=1, per_round=3, pool_size=8, test_size=4, seeds=(0,),
                                data_seed=1, image_size=128, detection_epochs=1, workspace=ws, progress=False,
                                empty_fraction=0.5)
    assert out["metric"] == "mAP@0.5" and out["settings"]["empty_frames_in_pool"] == 4
    empty_names = {r.name for r in datasets.generate("site", 4, seed=1, size=128, empty=True)}
    for strategy in ("uncertainty", "random"):
        p = next(p for p in ws.get_projects() if p.name.split()[4] == strategy)
        images = list(ws.iter_images(p.id))
        deleted = out["picked"][strategy]["(empty)"]
        assert len(images) == out["curves"][strategy]["labelled"][0] + 4 + 8 - deleted
        assert sum(im.original_name in empty_names for im in images) == 4 - deleted
        assert ws.get_image_count(p.id, tagging_status="Untagged") == 8 - 3  # picked: labelled or deleted
        assert all(v is None or 0.0 <= v <= 1.0 for v in out["curves"][strategy]["mean"])
    with pytest.raises(CvlabError, match="empty_fraction"):
        active_learning.learning_curve("parts", empty_fraction=0.5, workspace=ws, progress=False)

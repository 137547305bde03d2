"""Iteration as a workflow object: the portal's verbs give what the SDK-shaped functions give."""
from __future__ import annotations

import pytest

from cvlab.errors import CvlabError
from cvlab.export import get_exports
from cvlab.performance import get_iteration_performance
from cvlab.predict import Predictor
from helpers import scene


def test_iteration_verbs_match_the_sdk_shaped_functions(trained_pair, tmp_path):
    ws, project, it = trained_pair
    assert it.workspace is ws and project.latest_iteration() == it
    perf = it.performance(threshold=0.7)
    assert perf.to_dict() == get_iteration_performance(ws, project.id, it.id, threshold=0.7).to_dict()
    image = scene("disc", 321)
    assert it.predict(image) == Predictor.load(ws, it.id).predict(image)
    path = tmp_path / "disc.jpg"
    path.write_bytes(image)
    stored = it.quick_test(path)
    assert stored.iteration_id == it.id and stored.predictions == it.predict(image)
    assert [s.id for s in ws.query_predictions(project.id, application="QuickTest")] == [stored.id]
    assert it.quick_test(image, store=False) == it.predict(image)
    published = it.publish("shapes-v1")
    assert published.publish_name == "shapes-v1" and ws.find_published(project.id, "shapes-v1").id == it.id
    from cvlab.service.auth import resolve_keys
    assert published.original_publish_resource_id == resolve_keys(ws).prediction_resource_id  # the endpoint's
    with pytest.raises(CvlabError) as e:
        ws.delete_iteration(project.id, it.id)
    assert e.value.code == "BadRequestIterationIsPublished"
    assert it.unpublish().publish_name is None and it.refresh().publish_name is None
    export = it.export("ONNX")
    assert export.status == "Done" and [x.id for x in get_exports(ws, project.id, it.id)] == [export.id]


def test_an_unbound_iteration_says_where_to_get_a_bound_one():
    from cvlab.model import Iteration

    with pytest.raises(RuntimeError, match="ws.get_iteration"):
        Iteration("i", "p", "Iteration 1").performance()

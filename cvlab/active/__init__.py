"""Active learning: how unsure a model is, the smart labeler's suggestions and the Predictions tab.

- ``uncertainty``: ``prediction_uncertainty`` (Azure's ``predictionUncertainty``), ``suggestion_score``,
  ``spread_order`` and the other orders;
- ``cache``: an iteration's predictions on workspace images, computed once per (iteration, image content);
- ``suggestions``: ``suggest_tags_and_regions``, ``query_suggested_images``, ``query_suggested_image_count``;
- ``stored``: ``query_predictions`` with a PredictionQueryToken, ``add_predictions_to_training``.

Ranking stored predictions (``orderBy = Suggested``) uses the predictions stored with them, no model needed.
The experiment that compares the smart labeler with random picking is ``cvlab.experiments.active_learning``
(``benchmarks/active_learning.py``, notebook 07).

>>> from cvlab import active
>>> active.prediction_uncertainty([{"probability": 0.6}, {"probability": 0.4}], "Multiclass")
0.8
"""
from __future__ import annotations

from .cache import _memory, iteration_predictions
from .pages import PAGE, decode_continuation, encode_continuation
from .stored import PREDICTION_ORDER_BY, PredictionQueryResult, add_predictions_to_training, query_predictions
from .suggestions import (SORT_BY, SuggestedImageQuery, SuggestedTagAndRegion, query_suggested_image_count,
                          query_suggested_images, suggest_tags_and_regions)
from .uncertainty import (DETECTION_FLOOR, DIVERSITY, centred_unit, iteration_kind, prediction_uncertainty,
                          rank_by_uncertainty, spread_order, stored_prediction_kind, suggestion_score)

__all__ = ["DETECTION_FLOOR", "DIVERSITY", "PAGE", "PREDICTION_ORDER_BY", "SORT_BY", "PredictionQueryResult",
           "SuggestedImageQuery", "SuggestedTagAndRegion", "add_predictions_to_training", "centred_unit",
           "decode_continuation", "encode_continuation", "iteration_kind", "iteration_predictions",
           "prediction_uncertainty", "query_predictions", "query_suggested_image_count", "query_suggested_images",
           "rank_by_uncertainty", "spread_order", "stored_prediction_kind", "suggest_tags_and_regions",
           "suggestion_score", "_memory"]

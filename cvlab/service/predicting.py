"""One prediction as every predicting route does it: validate the image, charge the quota, run the iteration's
Predictor, store the image and result unless told not to, and answer in Azure's ImagePrediction shape."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from cvlab import images as cvimages
from cvlab import rules
from cvlab.errors import CvlabError

from . import wire

_ACTION = {"Classification": "classify", "ObjectDetection": "detect"}


def predict_and_store(ctx, project_id: str, iteration, data: bytes, store: bool, application: str | None,
                      expected_type: str | None) -> dict:
    """``expected_type`` is the project type the route serves (classify/detect), or None for quick test.

    The pixels are decoded once, inside the inference slot, so no more than the slots' worth of full-size images
    (up to 10240 px: 300 MB each) are ever held while requests queue. The image is checked before the iteration,
    so image errors still come before iteration errors. The prediction's count and, unless no-store, the prediction
    itself are only queued here (``ctx.stores``, written by ``DeferredStores.drain``): the caller drains them once
    its response is on its way (``answer``)."""
    if store:
        rules.check_application_name(application)
    with ctx.inference:
        info, image = cvimages.decode_image(data, purpose="prediction", digest=False)  # refused here, uncharged
        if iteration.status != "Completed":
            raise CvlabError("BadRequestIterationIsNotTrained", f"{iteration.name} is {iteration.status}; "
                             "predictions need a Completed iteration.")
        predictor = ctx.predictor(iteration.id)
        if expected_type and predictor.project_type != expected_type:
            detector = predictor.project_type == "ObjectDetection"
            raise CvlabError("BadRequestUnsupportedDomain", (
                f"This iteration is {'an object detector' if detector else 'a classifier'}: "
                f"call {_ACTION[predictor.project_type]}_image / {_ACTION[predictor.project_type]}_image_url, "
                f"not {_ACTION[expected_type]}_*."))
        ctx.ws.check_prediction_quota(1 + ctx.stores.queued_predictions())
        ctx.stores.count_prediction()
        predictions = predictor.predict(image)
        del image
    prediction_id, created = str(uuid.uuid4()), datetime.now(timezone.utc)
    if store:
        ctx.stores.put(project_id=project_id, iteration_id=iteration.id, image_bytes=data, predictions=predictions,
                       application=application, info=info, prediction_id=prediction_id, created=created)
    return wire.image_prediction(prediction_id, project_id, iteration.id, created, predictions)


def answer(ctx, prediction: dict) -> JSONResponse:
    """The prediction as sent (already wire-shaped: no re-encoding by FastAPI), then what it queued written."""
    return JSONResponse(prediction, background=BackgroundTask(ctx.stores.drain) if ctx.stores.pending() else None)

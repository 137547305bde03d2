"""Records (snake_case dataclasses) <-> Azure's camelCase JSON. The only place that knows the wire format.

Dates are UTC ``YYYY-MM-DDTHH:MM:SS.fffZ`` (msrest parses it; a space instead of ``T`` would break it). Free-text
fields the SDK requires on round trips (descriptions) are ``""``, never ``null``, as in the REST reference's
examples (https://learn.microsoft.com/rest/api/customvision/get-project). The query tokens the SDK sends back
(``PredictionQueryToken``, ``SuggestedTagAndRegionQueryToken``) are read and written here too, for the REST
routes and for the SDK-shaped functions of ``cvlab.active`` that take and return them.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from cvlab import domains as _domains

UriFactory = Callable[[Any], dict]  # image-like record -> {"originalImageUri", "thumbnailUri", "resizedImageUri"}


def dt(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_dt(value: str | None) -> datetime | None:
    """Parse an ISO-8601 date the SDK sent (``Z``, offsets, 0-7 fractional digits); naive means UTC."""
    if not value:
        return None
    s = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in s:  # .NET writes 7 fractional digits; datetime takes at most 6
        head, rest = s.split(".", 1)
        digits = "".join(c for c in rest if c.isdigit())
        tail = rest[len(digits):]
        s = f"{head}.{digits[:6].ljust(6, '0')}{tail}"
    out = datetime.fromisoformat(s)
    return out if out.tzinfo else out.replace(tzinfo=timezone.utc)


def domain(d) -> dict:
    info = d.model_information or {}
    return {"id": d.id, "name": d.name, "type": d.type, "exportable": d.exportable, "enabled": d.enabled,
            "exportablePlatforms": list(d.exportable_platforms),
            "modelInformation": {"estimatedModelSizeInMegabytes": info.get("estimated_model_size_in_megabytes"),
                                 "description": info.get("description", "")}}


def project(p) -> dict:
    s = dict(p.settings or {})
    settings = {
        "domainId": p.domain_id,
        "classificationType": p.classification_type,
        "targetExportPlatforms": list(p.target_export_platforms or []),
        "useNegativeSet": s.get("use_negative_set", True),
        "detectionParameters": s.get("detection_parameters"),
        "imageProcessingSettings": s.get("image_processing_settings"),
        "exportModelContainerUri": s.get("export_model_container_uri"),
        "notificationQueueUri": s.get("notification_queue_uri"),
    }
    return {"id": p.id, "name": p.name, "description": p.description or "", "settings": settings,
            "created": dt(p.created), "lastModified": dt(p.last_modified), "thumbnailUri": None,
            "drModeEnabled": False, "status": getattr(p, "status", "Succeeded") or "Succeeded"}


def tag(t) -> dict:
    return {"id": t.id, "name": t.name, "description": t.description or "", "type": t.type,
            "imageCount": int(t.image_count or 0)}


def image_tag(t) -> dict:
    return {"tagId": t.tag_id, "tagName": t.tag_name, "created": dt(t.created)}


def image_region(r) -> dict:
    return {"regionId": r.region_id, "tagName": r.tag_name, "created": dt(r.created), "tagId": r.tag_id,
            "left": r.left, "top": r.top, "width": r.width, "height": r.height}


def image(img, uris: UriFactory) -> dict:
    out = {"id": img.id, "created": dt(img.created), "width": img.width, "height": img.height}
    out.update(uris(img))
    out["tags"] = [image_tag(t) for t in img.tags] if img.tags else None
    out["regions"] = [image_region(r) for r in img.regions] if img.regions else None
    out["metadata"] = dict(img.metadata) if img.metadata else None
    return out


def create_summary(summary, uris: UriFactory) -> dict:
    return {"isBatchSuccessful": bool(summary.is_batch_successful),
            "images": [{"sourceUrl": r.source_url, "status": r.status,
                        "image": image(r.image, uris) if r.image is not None else None}
                       for r in summary.images]}


def iteration(it) -> dict:
    exportable = bool(it.exportable)
    exportable_to: list[str] = []
    if exportable and it.domain_id:
        try:
            exportable_to = list(_domains.get_domain(it.domain_id).exportable_platforms)
        except Exception:  # a retired domain id: nothing to export to
            exportable_to = []
    return {"id": it.id, "name": it.name, "status": it.status, "created": dt(it.created),
            "lastModified": dt(it.last_modified), "trainedAt": dt(it.trained_at), "projectId": it.project_id,
            "exportable": exportable, "exportableTo": exportable_to, "domainId": it.domain_id,
            "classificationType": it.classification_type, "trainingType": it.training_type or "Regular",
            "reservedBudgetInHours": int(it.reserved_budget_in_hours or 0),
            "trainingTimeInMinutes": int(it.training_time_in_minutes or 0),
            "publishName": it.publish_name or None,
            "originalPublishResourceId": it.original_publish_resource_id or None,
            "customBaseModelInfo": None, "trainingErrorDetails": it.training_error_details or None}


def bounding_box(b) -> dict | None:
    if b is None:
        return None
    get = b.get if isinstance(b, dict) else (lambda k: getattr(b, k))
    return {"left": float(get("left")), "top": float(get("top")), "width": float(get("width")),
            "height": float(get("height"))}


def prediction(p: dict) -> dict:
    return {"probability": float(p["probability"]), "tagId": p["tag_id"], "tagName": p["tag_name"],
            "boundingBox": bounding_box(p.get("bounding_box")), "tagType": p.get("tag_type", "Regular")}


def image_prediction(pred_id: str, project_id: str, iteration_id: str, created: datetime,
                     predictions: list[dict]) -> dict:
    return {"id": pred_id, "project": project_id, "iteration": iteration_id, "created": dt(created),
            "predictions": [prediction(p) for p in predictions]}


def _metric(x):
    """A metric on the wire: float, or null when undefined (``cvlab.metrics.Undefined``, e.g. one fold's std)."""
    from cvlab.metrics import json_number
    return None if x is None else json_number(x)


def tag_performance(t) -> dict:
    return {"id": t.id, "name": t.name, "precision": _metric(t.precision),
            "precisionStdDeviation": _metric(t.precision_std_deviation),
            "recall": _metric(t.recall), "recallStdDeviation": _metric(t.recall_std_deviation),
            "averagePrecision": _metric(t.average_precision)}


def iteration_performance(perf) -> dict:
    return {"perTagPerformance": [tag_performance(t) for t in perf.per_tag_performance],
            "precision": _metric(perf.precision),
            "precisionStdDeviation": _metric(perf.precision_std_deviation),
            "recall": _metric(perf.recall),
            "recallStdDeviation": _metric(perf.recall_std_deviation),
            "averagePrecision": _metric(perf.average_precision)}


def export(e, link) -> dict:
    """``downloadUri`` is absolute and expiring (Azure's is a SAS URL): ``link`` turns the relative path the
    exporter recorded into a signed URL on this host (``blobs.export_link``)."""
    uri = e.download_uri or ""
    if uri and "://" not in uri:
        uri = link(uri)
    return {"platform": e.platform, "status": e.status, "downloadUri": uri, "flavor": e.flavor,
            "newerVersionAvailable": bool(getattr(e, "newer_version_available", False))}


def image_performance(p, image_uris: dict) -> dict:
    """``image_uris`` are the image's blob URIs ({} when the image was deleted since training)."""
    created = dt(p.created)
    return {"predictions": [prediction(x) for x in p.predictions], "id": p.id, "created": created,
            "width": p.width, "height": p.height, "imageUri": image_uris.get("originalImageUri"),
            "thumbnailUri": image_uris.get("thumbnailUri"),
            "tags": [{"tagId": t["tag_id"], "tagName": t["tag_name"], "created": created} for t in p.tags],
            "regions": [{"regionId": None, "tagName": r["tag_name"], "created": created, "tagId": r["tag_id"],
                         "left": r["left"], "top": r["top"], "width": r["width"], "height": r["height"]}
                        for r in p.regions]}


def stored_prediction(sp, uris: UriFactory) -> dict:
    out = uris(sp)
    out.update({"domain": sp.domain_id, "id": sp.id, "project": sp.project_id, "iteration": sp.iteration_id,
                "created": dt(sp.created), "predictions": [prediction(x) for x in sp.predictions]})
    return out


# ---- query tokens ----------------------------------------------------------------------------------------------
def _plain(value):
    """An SDK model object (attributes) as a dict, so the token's schema reads it like JSON."""
    if value is None or isinstance(value, (dict, str, int, float, bool, datetime)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return {k: _plain(v) for k, v in vars(value).items() if not k.startswith("_") and k != "additional_properties"}


def prediction_query(token) -> dict:
    """An Azure PredictionQueryToken (camelCase or snake_case keys; a dict, an SDK object or the REST body) as
    ``cvlab.active`` query arguments, checked by its one schema (``schemas.PredictionQueryToken``)."""
    from pydantic import ValidationError

    from cvlab.errors import CvlabError

    from .schemas import PredictionQueryToken

    if isinstance(token, PredictionQueryToken):
        parsed = token
    else:
        raw = _plain(token) or {}
        fields = PredictionQueryToken.model_fields
        known = {name for name in fields} | {f.alias for f in fields.values() if f.alias}
        unknown = sorted(k for k in raw if k not in known)
        if unknown:
            raise CvlabError("BadRequestPredictionInvalidQueryParameters",
                             f"Unknown query field(s) {unknown}: use {sorted(f.alias for f in fields.values())}.")
        try:
            parsed = PredictionQueryToken.model_validate(raw)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            code = ("BadRequestPredictionResultsExceededCount" if err["loc"][0] in ("maxCount", "max_count")
                    else "BadRequestPredictionInvalidQueryParameters")
            hint = " (an ISO-8601 time, e.g. 2026-01-31T12:00:00Z)" if "time" in where.lower() else ""
            raise CvlabError(code, f"The query's {where} {err.get('input')!r} is not valid{hint}: "
                                   f"{err['msg']}.") from None
    q = parsed.model_dump(exclude_none=True)
    if "tags" in q:
        q["tags"] = [{"id": t["id"], "min_threshold": t.get("min_threshold"), "max_threshold": t.get("max_threshold")}
                     for t in q["tags"]]
    for key in ("start_time", "end_time"):
        if q.get(key) is not None and q[key].tzinfo is None:
            q[key] = q[key].replace(tzinfo=timezone.utc)
    return q


def prediction_query_token(q: dict) -> dict:
    """The PredictionQueryToken to send back for the next page (``cvlab.active.query_predictions``' state)."""
    return {"session": q["session"], "continuation": q["continuation"], "maxCount": q["max_count"],
            "orderBy": q["order_by"],
            "tags": [{"id": t["id"], "minThreshold": t["min_threshold"], "maxThreshold": t["max_threshold"]}
                     for t in q["tags"]],
            "iterationId": q["iteration_id"],
            "startTime": q["start_time"].isoformat() if q["start_time"] else None,
            "endTime": q["end_time"].isoformat() if q["end_time"] else None, "application": q["application"]}


def suggested_query_token(q: dict) -> dict:
    """The SuggestedTagAndRegionQueryToken to send back for the next page of the smart labeler."""
    return {"tagIds": q["tag_ids"], "threshold": q["threshold"], "session": q["session"],
            "continuation": q["continuation"], "maxCount": q["max_count"], "sortBy": q["sort_by"]}


# ---- smart labeler, region proposals, label batches -------------------------------------------------------------
def suggested_tag_and_region(sug, uris: UriFactory | None = None, domain_id: str | None = None) -> dict:
    out = {"id": sug.id, "project": sug.project_id, "iteration": sug.iteration_id, "created": dt(sug.created),
           "predictions": [prediction(x) for x in sug.predictions],
           "predictionUncertainty": float(sug.prediction_uncertainty)}
    if uris is not None and sug.image is not None:
        out.update(uris(sug.image))
        out.update(width=sug.image.width, height=sug.image.height, domain=domain_id)
    return out


def region_proposals(project_id: str, image_id: str, predictions: list[dict]) -> dict:
    return {"projectId": project_id, "imageId": image_id,
            "proposals": [{"confidence": p["probability"], "boundingBox": bounding_box(p["bounding_box"])}
                          for p in predictions if p.get("bounding_box")]}


def image_tag_create_summary(res: dict) -> dict:
    conv = lambda items: [{"imageId": d["image_id"], "tagId": d["tag_id"]} for d in items]  # noqa: E731
    return {"created": conv(res.get("created", [])), "duplicated": conv(res.get("duplicated", [])),
            "exceeded": conv(res.get("exceeded", []))}


def image_region_create_summary(res: dict) -> dict:
    entry = lambda r: {"imageId": r["image_id"], "tagId": r["tag_id"], "left": r["left"], "top": r["top"],  # noqa
                       "width": r["width"], "height": r["height"]}
    created = [{"imageId": r["image_id"], "regionId": r["region_id"], "tagName": r["tag_name"],
                "created": dt(r["created"]), "tagId": r["tag_id"], "left": r["left"], "top": r["top"],
                "width": r["width"], "height": r["height"]} for r in res.get("created", [])]
    return {"created": created, "duplicated": [entry(r) for r in res.get("duplicated", [])],
            "exceeded": [entry(r) for r in res.get("exceeded", [])]}


def image_metadata_update_summary(images) -> dict:
    return {"isBatchSuccessful": True,
            "images": [{"imageId": im.id, "status": "OK", "metadata": dict(im.metadata)} for im in images]}


#: Image URI fields by blob variant (``ServiceContext.uri_factory`` signs them).
IMAGE_URI_FIELDS = {"original": "originalImageUri", "resized": "resizedImageUri", "thumbnail": "thumbnailUri"}

"""Records (snake_case dataclasses) -> Azure's camelCase JSON. The only place that knows the wire format.

Dates are UTC ``YYYY-MM-DDTHH:MM:SS.fffZ`` (msrest parses it; a space instead of ``T`` would break it). Free-text
fields the SDK requires on round trips (descriptions) are ``""``, never ``null`` (reference §1.3).
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
    if "." in s:  # Python < 3.11-compatible trimming of 7-digit fractions
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

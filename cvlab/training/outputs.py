"""What a training leaves behind: ``model.pt``, ``evaluation.json`` and the ``iteration.json`` info
(``cvlab.artefacts`` is the contract with the readers)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from cvlab.artefacts import ARTEFACT_FORMAT, EVALUATION, save_model, write_json

from .plan import negative_index


def jsonable(value):
    """``value`` as plain JSON types (a string when it cannot be)."""
    try:
        return json.loads(json.dumps(value, default=float))
    except (TypeError, ValueError):
        return str(value)


def save(ws, plan, iteration, model, records, k, scheme, preprocessing, timings, extra, *, head, backbone) -> dict:
    """Write ``model.pt`` and ``evaluation.json`` for the iteration; returns its ``iteration.json`` info."""
    folder = Path(ws.iteration_dir(iteration.id))
    folder.mkdir(parents=True, exist_ok=True)
    save_model(folder, model)
    tags = [{"id": t.id, "name": t.name, "type": t.type} for t in plan.tags]
    write_json(folder / EVALUATION, {
        "project_type": plan.project_type,
        "classification_type": plan.classification_type if plan.project_type == "Classification" else None,
        "k_folds": k, "scheme": scheme, "tags": tags, "records": records})
    return {
        "format": ARTEFACT_FORMAT, "iteration_id": iteration.id, "project_id": plan.project.id,
        "project_type": plan.project_type, "classification_type": plan.classification_type,
        "training_type": plan.training_type, "reserved_budget_in_hours": plan.budget_hours,
        "domain_id": plan.domain.id, "domain_name": plan.domain.name, "backbone": backbone, "head": head,
        "negative_index": negative_index(plan) if plan.project_type == "Classification" else None,
        "num_classes": len(plan.tags), "tags": tags, "preprocessing": preprocessing.to_dict(),
        "seed": plan.seed, "fingerprint": plan.fingerprint,
        "train_image_count": len(plan.train), "holdout_image_count": len(plan.holdout),
        "skipped_tags": [t.name for t in plan.skipped_tags], "evaluation_scheme": scheme,
        "seconds_per_budget_hour": plan.seconds_per_budget_hour, "timings": timings, **extra,
        "created": datetime.now(timezone.utc).isoformat(),
    }

"""Azure's training validation: the plan of one training (what to train on, which tags, which split), or the
error Azure answers (``BadRequest...TrainingValidationFailed``, ``BadRequestTrainingNotNeeded``, ...)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from cvlab import rules
from cvlab.artefacts import read_info
from cvlab.domains import get_domain
from cvlab.errors import CvlabError

VALIDATION_FRACTION = 0.2


@dataclass
class Plan:
    """What one training uses: the project's tags in output order, the training and held-out images, the seed
    and budget.
    """

    project: object
    domain: object
    project_type: str
    classification_type: str
    training_type: str
    budget_hours: int
    tags: list                 # model tags in output order (Negative last in classification)
    train: list                # Image records used for training (and cv evaluation)
    holdout: list              # Image records set aside by the learner
    fingerprint: str
    seed: int
    seconds_per_budget_hour: float  # lab seconds one budget hour lasts
    detection_epochs: int | None   # a fixed epoch count for the detector (None: planned by the detector)
    skipped_tags: list = field(default_factory=list)


def _all_images(ws, project_id: str) -> list:
    take = rules.limit("take")
    out, skip = [], 0
    while True:
        page = ws.get_images(project_id, tagging_status="All", order_by="Oldest", take=take, skip=skip)
        out.extend(page)
        if len(page) < take:
            return out
        skip += take


def _is_holdout(image, holdout_ids: set) -> bool:
    flag = str((image.metadata or {}).get("holdout", "")).strip().lower()
    return image.id in holdout_ids or flag in ("true", "1", "yes")


def _labels(image, project_type: str, tag_ids: set) -> tuple:
    if project_type == "ObjectDetection":
        return tuple(sorted((r.tag_id, round(r.left, 4), round(r.top, 4), round(r.width, 4), round(r.height, 4))
                            for r in image.regions if r.tag_id in tag_ids))
    return tuple(sorted(t.tag_id for t in image.tags if t.tag_id in tag_ids))


def _fingerprint(project, project_type, training_type, images, tags, holdout) -> str:
    ids = {t.id for t in tags}
    payload = {
        "images": sorted([im.id, _labels(im, project_type, ids)] for im in images),
        "holdout": sorted(im.id for im in holdout),
        "tags": sorted([t.id, t.name, t.type] for t in tags),
        "training_type": training_type,
        "domain": project.domain_id,
        "classification_type": project.classification_type,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def make_plan(ws, project_id, training_type, budget, force, selected_tags, seed, holdout,
              seconds_per_budget_hour: float, detection_epochs: int | None) -> Plan:
    """Check the project as Azure does before it trains, and decide what this training uses."""
    project = ws.get_project(project_id)
    domain = get_domain(project.domain_id)
    project_type = domain.type
    ctype = project.classification_type or "Multiclass"
    rules.check_choice(training_type, rules.TRAINING_TYPES, "Training type", "BadRequestInvalid")
    budget = rules.check_budget_hours(budget)
    if training_type == "Advanced":
        if budget < 1:
            raise CvlabError("BadRequestReservedBudgetInHoursNotEnoughForAdvancedTraining",
                             "Can't train just yet. Reserved budget in hours is not enough to do advanced "
                             "training: pass reserved_budget_in_hours of at least 1 (in cvlab one budget hour is "
                             f"{seconds_per_budget_hour:g} s of lab time).")

    for it in ws.get_iterations(project.id):
        if it.status in ("Training", "Queued"):
            raise CvlabError("BadRequestTrainingAlreadyInProgress",
                             f"{it.name} of this project is still training: wait until its status is Completed "
                             "or Failed (or cancel it) before training again.")

    all_tags = ws.get_tags(project.id)
    by_id = {t.id: t for t in all_tags}
    if selected_tags:
        unknown = [t for t in selected_tags if str(t).lower() not in by_id]
        if unknown:
            raise CvlabError("NotFoundTag", f"selected_tags contains ids that are not tags of this project: "
                                            f"{unknown}. Use ids from get_tags().")
        chosen = [by_id[str(t).lower()] for t in selected_tags]
    else:
        chosen = list(all_tags)
    code = rules.training_validation_code(project_type, ctype)

    if project_type == "ObjectDetection" and any(t.type == "Negative" for t in all_tags):
        raise CvlabError("BadRequestDetectionTrainingNotAllowNegativeTag",
                         rules.TAG_RULES["negative_classification_only"].text + " Delete the Negative tag, then "
                         "train again.")

    holdout_ids = {str(i).lower() for i in (holdout or [])}
    images = _all_images(ws, project.id)
    known = {im.id for im in images}
    missing = holdout_ids - known
    if missing:
        raise CvlabError("NotFoundImage", f"holdout names images that are not in this project: {sorted(missing)[:5]}")
    chosen_ids = {t.id for t in chosen}
    labelled = [im for im in images if _labels(im, project_type, chosen_ids)]
    held = [im for im in labelled if _is_holdout(im, holdout_ids)]
    train = [im for im in labelled if not _is_holdout(im, holdout_ids)]
    if not train:
        what = "boxes (regions)" if project_type == "ObjectDetection" else "tags"
        raise CvlabError(code, f"Not enough images for training: no image has {what} yet. Label at least "
                               f"{rules.min_images_per_tag(project_type)} images per tag, then train.")

    counts = {t.id: 0 for t in chosen}
    for im in train:
        for tid in set(_labels(im, project_type, chosen_ids) if project_type != "ObjectDetection"
                       else [r[0] for r in _labels(im, project_type, chosen_ids)]):
            counts[tid] += 1
    minimum = rules.min_images_per_tag(project_type)
    short = [f"{by_id[t].name!r} has {n}" for t, n in counts.items() if 0 < n < minimum]
    if short:
        raise CvlabError(code, f"Not enough images for training: every tag needs at least {minimum} training "
                               f"images ({'; '.join(short)}). Label more images for these tags (50 or more per "
                               "tag gives a much better model), or remove the tag from the images.")
    skipped = [t for t in chosen if counts[t.id] == 0]
    tags = [t for t in chosen if counts[t.id] > 0]
    if project_type == "Classification":
        tags = [t for t in tags if t.type != "Negative"] + [t for t in tags if t.type == "Negative"]
        if len(tags) < 2:
            raise CvlabError(code, f"A classifier needs at least 2 tags with images (a Negative tag counts as "
                                   f"one); this project has {len(tags)}. Add images of another tag, or tag "
                                   "images that show none of your tags as Negative.")
        if ctype == "Multiclass":
            tag_ids = {t.id for t in tags}
            multi = [im for im in train if len(_labels(im, project_type, tag_ids)) > 1]
            if multi:
                raise CvlabError(code, f"{len(multi)} image(s) carry more than one tag (e.g. "
                                       f"{multi[0].original_name or multi[0].id}), but a Multiclass project "
                                       "gives each image exactly one tag: remove the extra tags, or switch the "
                                       "project to Multilabel.")
    fingerprint = _fingerprint(project, project_type, training_type, train, tags, held)
    if not force:
        last = ws.latest_iteration(project.id)
        if last is not None and read_info(ws, last.id).get("fingerprint") == fingerprint:
            raise CvlabError("BadRequestTrainingNotNeeded",
                             f"Nothing changed since {last.name} (same images, labels, training type and domain): "
                             "add or relabel images first, or pass force_train=True to train again anyway.")
    rules.check_limit("iterations_per_project", ws.tier, len(ws.get_iterations(project.id)))
    return Plan(project, domain, project_type, ctype, training_type, budget, tags, train, held, fingerprint,
                int(seed), float(seconds_per_budget_hour), detection_epochs, skipped)


def negative_index(plan: Plan):
    """The Negative tag's output position, or None."""
    neg = [i for i, t in enumerate(plan.tags) if t.type == "Negative"]
    return neg[0] if neg else None


def validation_split(plan: Plan, strata) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation indices, stratified when every stratum has at least 2 members."""
    from sklearn.model_selection import train_test_split

    n = len(strata)
    idx = np.arange(n)
    n_val = max(1, int(round(VALIDATION_FRACTION * n)))
    values, counts = np.unique(np.asarray(strata), return_counts=True)
    stratify = strata if counts.min() >= 2 and n_val >= len(values) else None
    tr, va = train_test_split(idx, test_size=n_val, random_state=plan.seed, stratify=stratify)
    return np.sort(tr), np.sort(va)

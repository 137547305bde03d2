"""train_project(): Azure's training validation, Quick/Advanced training, iterations and their evaluation records.

Quick (`Regular`) classification: frozen ImageNet embeddings (cached per image, see ``cvlab.embeddings``) and a
logistic-regression head; the iteration's model is the pretrained network with that head.  Advanced: the whole
network, starting from the Quick head (LP-FT), is fine-tuned with augmentation and early stopping inside a time
budget (one budget hour = ``CVLAB_SECONDS_PER_BUDGET_HOUR`` seconds of lab time, default 60).  Object detection goes through
``cvlab.nets.detector``.

Evaluation (``evaluation.json``, read by ``cvlab.performance``):
- Quick classification: out-of-fold predictions by stratified k-fold (k = 5, fewer when a tag has fewer images)
  on the cached embeddings, head refitted per fold; records of split ``cv``.
- Advanced classification and detection: folds would be full trainings, so a seeded, stratified validation
  fraction (``VALIDATION_FRACTION``) is held back from training; the shipped model's predictions on it are the
  ``cv`` records (``k_folds`` = 1, ``scheme`` says which). For Advanced it also drives early stopping.
- Holdout: images passed as ``holdout=[image ids]`` or carrying metadata ``holdout`` = true/1/yes are never
  trained on; the final model's predictions on them are records of split ``holdout``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cvlab import rules
from cvlab.errors import CvlabError

SECONDS_PER_BUDGET_HOUR_ENV = "CVLAB_SECONDS_PER_BUDGET_HOUR"
DEFAULT_SECONDS_PER_BUDGET_HOUR = 60.0
VALIDATION_FRACTION = 0.2
MAX_FOLDS = 5
MAX_FINE_TUNE_EPOCHS = 40
# Fine-tuning cost per training image and epoch on a 2-core laptop (forward + backward + augmentation). Advanced
# training plans its epoch count from the budget with these fixed numbers, so the same data and seed give the
# same model; the measured clock only cuts training short when the machine is slower than planned.
FINE_TUNE_SECONDS_PER_IMAGE = {"lite0": 0.15, "lite1": 0.22, "lite2": 0.35}
DETECTION_SIZE = 320
DETECTION_EPOCHS_ENV = "CVLAB_DETECTION_EPOCHS"  # optional fixed epoch count (short demos, tests)
ARTEFACT_FORMAT = 1

_train_lock = threading.Lock()          # one CPU-heavy training at a time per process (2 cores; global RNG seeding)
_project_locks: dict[str, threading.Lock] = {}
_registry_lock = threading.Lock()
_running: dict[str, threading.Thread | None] = {}   # iteration id -> thread (None while running in the caller)
_cancel_events: dict[str, threading.Event] = {}
#: Workshop mode installs a fair FIFO queue here (``cvlab.workshop.TrainingQueue``): ``enqueue(ws, project_id,
#: iteration_id)`` returns None or a ticket whose ``with`` block waits for the iteration's turn (status Queued).
admission = None


def seconds_per_budget_hour() -> float:
    try:
        return float(os.environ.get(SECONDS_PER_BUDGET_HOUR_ENV, DEFAULT_SECONDS_PER_BUDGET_HOUR))
    except ValueError:
        raise CvlabError("BadRequest", f"{SECONDS_PER_BUDGET_HOUR_ENV} must be a number of seconds.") from None


# ---------------------------------------------------------------------------------------------------------------
# data collection and validation
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class _Plan:
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


def _plan(ws, project_id, training_type, budget, force, selected_tags, seed, holdout) -> _Plan:
    from cvlab.domains import get_domain

    project = ws.get_project(project_id)
    domain = get_domain(project.domain_id)
    project_type = domain.type
    ctype = project.classification_type or "Multiclass"
    rules.check_choice(training_type, rules.TRAINING_TYPES, "Training type", "BadRequestInvalid")
    if training_type == "Advanced":
        try:
            budget = int(budget)
        except (TypeError, ValueError):
            budget = 0
        if budget < 1:
            raise CvlabError("BadRequestReservedBudgetInHoursNotEnoughForAdvancedTraining",
                             "Can't train just yet. Reserved budget in hours is not enough to do advanced "
                             "training: pass reserved_budget_in_hours of at least 1 (in cvlab one budget hour is "
                             f"{seconds_per_budget_hour():g} s of lab time).")
    else:
        budget = int(budget or 0)

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
        last = _last_completed(ws, project.id)
        if last is not None and _artefact(ws, last.id).get("fingerprint") == fingerprint:
            raise CvlabError("BadRequestTrainingNotNeeded",
                             f"Nothing changed since {last.name} (same images, labels, training type and domain): "
                             "add or relabel images first, or pass force_train=True to train again anyway.")
    rules.check_limit("iterations_per_project", ws.tier, len(ws.get_iterations(project.id)))
    return _Plan(project, domain, project_type, ctype, training_type, budget, tags, train, held, fingerprint,
                 int(seed), skipped)


def _last_completed(ws, project_id):
    done = [it for it in ws.get_iterations(project_id) if it.status == "Completed"]
    return max(done, key=lambda it: (it.created, it.id)) if done else None


def _artefact(ws, iteration_id) -> dict:
    path = Path(ws.iteration_dir(iteration_id)) / "iteration.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# ---------------------------------------------------------------------------------------------------------------
# progress and cancellation
# ---------------------------------------------------------------------------------------------------------------
class _Progress:
    """One tqdm bar (tqdm.auto: a widget in notebooks) plus the ``progress(fraction, message)`` callback."""

    def __init__(self, name: str, callback=None, show: bool = True):
        from tqdm.auto import tqdm

        self.callback = callback
        self.bar = tqdm(total=1000, desc=name, disable=not show, leave=True,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} {postfix}")
        self.at = 0

    def __call__(self, fraction: float, message: str = "") -> None:
        target = int(1000 * min(max(fraction, 0.0), 1.0))
        if target > self.at:
            self.bar.update(target - self.at)
            self.at = target
        if message:
            self.bar.set_postfix_str(message, refresh=True)
        if self.callback is not None:
            self.callback(min(max(fraction, 0.0), 1.0), message)

    def span(self, lo: float, hi: float):
        return lambda f, msg="": self(lo + (hi - lo) * f, msg)

    def close(self):
        self.bar.close()


class _CancelFlag:
    """Cancellation as both a callable and an Event-like ``is_set()``, whichever the training loop polls."""

    def __init__(self, event: threading.Event, external):
        self.event, self.external = event, external

    def is_set(self) -> bool:
        if self.event.is_set():
            return True
        if self.external is None:
            return False
        if isinstance(self.external, threading.Event):
            return self.external.is_set()
        return bool(self.external())

    __call__ = is_set


def cancel_training(ws, iteration_id: str) -> None:
    """Ask a running training to stop; its iteration ends Failed with "Cancelled".

    An iteration marked Training that no thread of this process runs (e.g. after a crash) is marked at once.
    """
    iteration_id = str(iteration_id).lower()
    with _registry_lock:
        event = _cancel_events.get(iteration_id)
    if event is not None:
        event.set()
        return
    for project in ws.get_projects():
        for it in ws.get_iterations(project.id):
            if it.id == iteration_id:
                if it.status in ("Training", "Queued"):
                    ws.update_iteration(project.id, it.id, status="Failed", training_error_details="Cancelled")
                    return
                raise CvlabError("BadRequest", f"{it.name} is not training (status {it.status}): nothing to cancel.")
    raise CvlabError("NotFoundIteration", f"No iteration {iteration_id} in this workspace.")


def recover_interrupted(ws) -> list[str]:
    """Mark iterations left in Training with no live thread (the process stopped mid-training) as Failed."""
    fixed = []
    with _registry_lock:
        live = {i for i, t in _running.items() if t is None or t.is_alive()}
    for project in ws.get_projects():
        for it in ws.get_iterations(project.id):
            if it.status in ("Training", "Queued") and it.id not in live:
                ws.update_iteration(project.id, it.id, status="Failed", training_error_details="interrupted")
                fixed.append(it.id)
    return fixed


def wait(ws, project_id: str, iteration_id: str, timeout: float | None = None, poll: float = 0.2):
    """Block until a background training finishes; returns the final Iteration."""
    with _registry_lock:
        thread = _running.get(str(iteration_id))
    if thread is not None:
        thread.join(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        it = ws.get_iteration(project_id, iteration_id)
        if it.status not in ("Training", "Queued") or (deadline is not None and time.monotonic() > deadline):
            return it
        time.sleep(poll)


# ---------------------------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------------------------
def train_project(ws, project_id: str, training_type: str = "Regular", reserved_budget_in_hours: int = 0,
                  force_train: bool = False, selected_tags=None, seed: int = 0, holdout=None,
                  background: bool = False, progress=None, cancel=None, show_progress: bool = True):
    """Validate as Azure does, create an iteration (status Training) and train it.

    Returns the Iteration: Completed/Failed when ``background`` is False, still Training when True (a thread
    trains it; poll ``ws.get_iteration`` or call ``wait``).  ``progress(fraction, message)`` reports progress,
    ``cancel`` (an Event or a callable returning True) stops it.
    """
    project = ws.get_project(project_id)
    with _registry_lock:
        lock = _project_locks.setdefault(project.id, threading.Lock())
    with lock:
        plan = _plan(ws, project.id, training_type or "Regular", reserved_budget_in_hours, force_train,
                     selected_tags, seed, holdout)
        n = len(ws.get_iterations(project.id)) + 1
        names = {it.name for it in ws.get_iterations(project.id)}
        while f"Iteration {n}" in names:
            n += 1
        iteration = ws.create_iteration(
            project.id, name=f"Iteration {n}", status="Training", domain_id=plan.domain.id,
            classification_type=plan.classification_type if plan.project_type == "Classification" else None,
            training_type=plan.training_type, reserved_budget_in_hours=plan.budget_hours,
            exportable=bool(plan.domain.exportable), seed=plan.seed)
        ticket = admission.enqueue(ws, project.id, iteration.id) if admission is not None else None
        event = threading.Event()
        with _registry_lock:
            _cancel_events[iteration.id] = event
            _running[iteration.id] = None
    job = lambda: _run(ws, plan, iteration, progress, _CancelFlag(event, cancel), show_progress, ticket)  # noqa: E731
    if background:
        thread = threading.Thread(target=job, name=f"cvlab-train-{iteration.id[:8]}", daemon=True)
        with _registry_lock:
            _running[iteration.id] = thread
        thread.start()
        return iteration if ticket is None else ws.get_iteration(project.id, iteration.id)  # maybe Queued
    job()
    return ws.get_iteration(project.id, iteration.id)


def _run(ws, plan: _Plan, iteration, callback, cancelled, show_progress, ticket=None) -> None:
    bar = _Progress(f"{plan.project.name} / {iteration.name}", callback, show_progress)
    try:
        with ticket or contextlib.nullcontext(), _train_lock:
            started = time.monotonic()  # training time, not time spent waiting in the workshop queue
            _seed_everything(plan.seed)
            if plan.project_type == "ObjectDetection":
                info = _train_detection(ws, plan, iteration, bar, cancelled)
            else:
                info = _train_classification(ws, plan, iteration, bar, cancelled)
        elapsed = time.monotonic() - started
        info["timings"]["total_s"] = round(elapsed, 2)
        _write_json(Path(ws.iteration_dir(iteration.id)) / "iteration.json", info)
        ws.update_iteration(plan.project.id, iteration.id, status="Completed",
                            trained_at=datetime.now(timezone.utc),
                            training_time_in_minutes=max(1, math.ceil(elapsed / 60)))
        bar(1.0, "Completed")
    except InterruptedError:
        ws.update_iteration(plan.project.id, iteration.id, status="Failed", training_error_details="Cancelled")
        bar(bar.at / 1000, "Cancelled")
    except CvlabError as e:
        ws.update_iteration(plan.project.id, iteration.id, status="Failed", training_error_details=str(e))
    except Exception as e:  # noqa: BLE001 - the reason goes to the iteration, the learner sees it there
        traceback.print_exc()
        ws.update_iteration(plan.project.id, iteration.id, status="Failed",
                            training_error_details=f"{type(e).__name__}: {e}")
    finally:
        bar.close()
        with _registry_lock:
            _running.pop(iteration.id, None)
            _cancel_events.pop(iteration.id, None)


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------------------------------
def _targets(plan: _Plan, images) -> tuple[np.ndarray, np.ndarray]:
    """Class indices (multiclass) or 0/1 rows over the head's outputs (multilabel; Negative -> all zeros),
    plus the full 0/1 truth matrix over every output tag."""
    index = {t.id: i for i, t in enumerate(plan.tags)}
    truth = np.zeros((len(images), len(plan.tags)), np.float32)
    for r, im in enumerate(images):
        for t in im.tags:
            if t.tag_id in index:
                truth[r, index[t.tag_id]] = 1
    if plan.classification_type == "Multiclass":
        return truth.argmax(1), truth
    regular = [i for i, t in enumerate(plan.tags) if t.type != "Negative"]
    return truth[:, regular], truth


def _negative_index(plan: _Plan):
    neg = [i for i, t in enumerate(plan.tags) if t.type == "Negative"]
    return neg[0] if neg else None


def _folds(plan: _Plan, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(y)
    if plan.classification_type == "Multiclass":
        counts = np.bincount(y)
        k = max(2, min(MAX_FOLDS, int(counts[counts > 0].min()), n))
        return list(StratifiedKFold(k, shuffle=True, random_state=plan.seed).split(np.zeros(n), y))
    k = max(2, min(MAX_FOLDS, n))
    return list(KFold(k, shuffle=True, random_state=plan.seed).split(np.zeros(n)))


def _validation_split(plan: _Plan, strata) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation indices, stratified when every stratum has at least 2 members."""
    from sklearn.model_selection import train_test_split

    n = len(strata)
    idx = np.arange(n)
    n_val = max(1, int(round(VALIDATION_FRACTION * n)))
    values, counts = np.unique(np.asarray(strata), return_counts=True)
    stratify = strata if counts.min() >= 2 and n_val >= len(values) else None
    tr, va = train_test_split(idx, test_size=n_val, random_state=plan.seed, stratify=stratify)
    return np.sort(tr), np.sort(va)


def _prediction_rows(plan: _Plan, probs: np.ndarray) -> list[list[dict]]:
    return [[{"tag_id": t.id, "probability": float(p), "bounding_box": None} for t, p in zip(plan.tags, row)]
            for row in probs]


def _truth_cls(plan: _Plan, image) -> dict:
    ids = {t.id for t in plan.tags}
    return {"tag_ids": [t.tag_id for t in image.tags if t.tag_id in ids], "regions": []}


def _train_classification(ws, plan: _Plan, iteration, bar: _Progress, cancelled) -> dict:
    import torch

    from cvlab import embeddings, recipes
    from cvlab.nets.backbones import spec
    from cvlab.nets.classifier import Classifier, fine_tune, head_probabilities, predict, set_head
    from cvlab.nets.preprocess import Preprocessing

    recipe = recipes.for_domain(plan.domain)
    bb, size = spec(recipe.backbone), recipe.size
    multilabel = plan.classification_type == "Multilabel"
    neg = _negative_index(plan)
    model = Classifier(bb.name, len(plan.tags), multilabel=multilabel, negative_index=neg, feature_norm="l2")
    y, truth = _targets(plan, plan.train)
    timings, records, extra = {}, [], {}

    if plan.training_type == "Regular":
        folds = _folds(plan, y)
        q = recipes.quick(ws, recipe, plan.train, plan.holdout, y, folds, multilabel, model, plan.seed, bar,
                          cancelled)
        timings.update(q["timings"])
        extra.update(q["details"])
        for im, f, row in zip(plan.train, q["fold_of"], _prediction_rows(plan, q["oof"])):
            records.append({"image_id": im.id, "split": "cv", "fold": int(f), "truth": _truth_cls(plan, im),
                            "predictions": row})
        hold_probs = q["holdout"]
        k, scheme = len(folds), (f"{len(folds)}-fold cross-validation of the linear head on cached embeddings "
                                 f"(C = {q['details']['C']} chosen by it)")
    else:
        t0 = time.monotonic()
        pre = Preprocessing(size=size)

        def pixels(images):
            return torch.from_numpy(np.stack([pre.array(ws.open_image(im)) for im in images]).astype(np.uint8)) \
                if images else torch.zeros((0, 3, size, size), dtype=torch.uint8)

        strata = y if not multilabel else np.array([str(r.astype(int).tolist()) for r in y])
        tr, va = _validation_split(plan, strata)
        x_all = pixels(plan.train)
        timings["decode_s"] = round(time.monotonic() - t0, 2)
        yt = torch.from_numpy(np.asarray(y, np.int64 if not multilabel else np.float32))
        budget = plan.budget_hours * seconds_per_budget_hour()
        bar(0.02, f"fine-tuning for up to {budget:g} s")
        # LP-FT: start from the linear probe of the training part (cached embeddings), not from a blank head
        w, b, c = recipes.probe_on(ws, recipe, [plan.train[i] for i in tr], y[tr], multilabel, model, plan.seed,
                                   cancelled)
        set_head(model, w, b)
        probe_val = predict(model, x_all[va]).numpy()
        epochs = planned_epochs(recipe, len(tr), budget)
        info = fine_tune(model, x_all[tr], yt[tr], x_all[va], yt[va], time_budget_s=budget, seed=plan.seed,
                         max_epochs=epochs, progress=lambda f, m: bar(0.02 + 0.9 * f, m), cancel=cancelled,
                         **recipe.fine_tune)
        info["planned_epochs"] = epochs
        timings["fine_tune_s"] = info["seconds"]
        val_probs = predict(model, x_all[va]).numpy()
        scores = {"probe": recipes.validation_score(probe_val, truth[va], multilabel),
                  "fine_tuned": recipes.validation_score(val_probs, truth[va], multilabel)}
        per_tag = truth.sum(0)
        kept = recipes.keep_fine_tuned(scores["probe"], scores["fine_tuned"], int(per_tag[per_tag > 0].min()))
        info["validation"] = scores
        extra["fine_tune"] = info
        extra.update({"recipe": recipe.to_dict(), "feature_norm": "l2"})
        if kept:
            extra["training_details"] = (f"Fine-tuned network kept: validation macro F1 "
                                         f"{scores['fine_tuned']['macro_f1']:.3f} against the linear probe's "
                                         f"{scores['probe']['macro_f1']:.3f}.")
            hold_probs = predict(model, pixels(plan.holdout)).numpy()
        else:  # the probe wins: ship Quick's model (probe on every training image), never worse than Quick
            extra["training_details"] = (f"Fine-tuning did not beat the linear probe on the validation split "
                                         f"(macro F1 {scores['fine_tuned']['macro_f1']:.3f} against "
                                         f"{scores['probe']['macro_f1']:.3f}, log-loss "
                                         f"{scores['fine_tuned']['log_loss']:.3f} against "
                                         f"{scores['probe']['log_loss']:.3f}): kept the probe, trained on all "
                                         f"{len(plan.train)} images as Quick training does.")
            model = Classifier(bb.name, len(plan.tags), multilabel=multilabel, negative_index=neg,
                               feature_norm="l2")
            set_head(model, *recipes.probe_on(ws, recipe, plan.train, y, multilabel, model, plan.seed,
                                              cancelled)[:2])
            val_probs = probe_val
            hold_probs = head_probabilities(model, embeddings.embed_images(ws, plan.holdout, bb.name, size)) \
                if plan.holdout else np.zeros((0, len(plan.tags)), np.float32)
        extra["fine_tune"]["kept"] = "fine_tuned" if kept else "probe"
        for im, row in zip([plan.train[i] for i in va], _prediction_rows(plan, val_probs)):
            records.append({"image_id": im.id, "split": "cv", "fold": 0, "truth": _truth_cls(plan, im),
                            "predictions": row})
        k = 1
        scheme = (f"validation split: {len(va)} of {len(plan.train)} training images held back from fine-tuning "
                  "(also used for early stopping and to choose between the fine-tuned network and the probe)")
        extra["validation_image_ids"] = [plan.train[i].id for i in va]
    for im, row in zip(plan.holdout, _prediction_rows(plan, hold_probs)):
        records.append({"image_id": im.id, "split": "holdout", "fold": None, "truth": _truth_cls(plan, im),
                        "predictions": row})
    bar(0.97, "saving")
    preprocessing = Preprocessing(size=size)
    return _save(ws, plan, iteration, model, records, k, scheme, preprocessing, timings, extra,
                 head="sigmoid" if multilabel else "softmax", backbone=bb.name)


def planned_epochs(recipe_or_backbone, n_train: int, budget_s: float) -> int:
    """Epochs that fit the budget at the planned per-image cost (at least 1, at most MAX_FINE_TUNE_EPOCHS)."""
    from cvlab import recipes

    return recipes.planned_epochs(recipe_or_backbone, n_train, budget_s, FINE_TUNE_SECONDS_PER_IMAGE,
                                  MAX_FINE_TUNE_EPOCHS)


# ---------------------------------------------------------------------------------------------------------------
# detection
# ---------------------------------------------------------------------------------------------------------------
def _rarest_tag_strata(tags, images) -> list[int]:
    """Each image's rarest tag, as its position in `tags`: stratifying on it puts every tag in the validation
    split when possible. Positions, not tag ids: ids are random uuids, and the split sorts its strata, so two
    projects with the same images and tags would otherwise get different splits."""
    index = {t.id: i for i, t in enumerate(tags)}
    freq = [sum(any(r.tag_id == t.id for r in im.regions) for im in images) for t in tags]
    return [min((index[r.tag_id] for r in im.regions if r.tag_id in index), key=lambda i: (freq[i], i))
            for im in images]


def _train_detection(ws, plan: _Plan, iteration, bar: _Progress, cancelled) -> dict:
    from cvlab.nets import detector
    from cvlab.nets.preprocess import Preprocessing

    index = {t.id: i for i, t in enumerate(plan.tags)}

    def targets(im):
        return [(index[r.tag_id], r.left, r.top, r.width, r.height) for r in im.regions if r.tag_id in index]

    from cvlab import recipes

    recipe = recipes.for_domain(plan.domain)
    tr, va = _validation_split(plan, _rarest_tag_strata(plan.tags, plan.train))
    timings, t0 = {}, time.monotonic()
    model = detector.build_detector(len(plan.tags), size=recipe.size, seed=plan.seed)
    train_images = [ws.open_image(plan.train[i]) for i in tr]
    budget = plan.budget_hours * seconds_per_budget_hour() if plan.training_type == "Advanced" else None
    bar(0.02, "training the detector")
    info = detector.fit_detector(model, train_images, [targets(plan.train[i]) for i in tr],
                                 advanced=plan.training_type == "Advanced", time_budget_s=budget,
                                 epochs=int(os.environ[DETECTION_EPOCHS_ENV]) if os.environ.get(
                                     DETECTION_EPOCHS_ENV) else (None if budget else recipe.quick_epochs),
                                 scale=recipe.advanced_scale,
                                 seed=plan.seed, progress=lambda f, m="": bar(0.02 + 0.85 * f, m),
                                 cancel=cancelled)
    timings["fit_s"] = round(time.monotonic() - t0, 2)
    if cancelled():
        raise InterruptedError("Cancelled")
    model.eval()
    bar(0.9, "evaluating")
    records = []
    for split, images in (("cv", [plan.train[i] for i in va]), ("holdout", plan.holdout)):
        found = detector.detect(model, [ws.open_image(im) for im in images]) if images else []
        for im, dets in zip(images, found):
            truth_regions = [{"tag_id": r.tag_id, "left": r.left, "top": r.top, "width": r.width,
                              "height": r.height} for r in im.regions if r.tag_id in index]
            records.append({
                "image_id": im.id, "split": split, "fold": 0 if split == "cv" else None,
                "truth": {"tag_ids": sorted({r["tag_id"] for r in truth_regions}), "regions": truth_regions},
                "predictions": [{"tag_id": plan.tags[c].id, "probability": float(p),
                                 "bounding_box": {"left": float(l), "top": float(t), "width": float(w),
                                                  "height": float(h)}}
                                for c, p, l, t, w, h in dets if w > 0 and h > 0]})  # drop degenerate boxes
    scheme = (f"validation split: {len(va)} of {len(plan.train)} training images held back from training the "
              "detector")
    extra = {"fit": _jsonable(info), "validation_image_ids": [plan.train[i].id for i in va],
             "recipe": recipe.to_dict()}
    return _save(ws, plan, iteration, model, records, 1, scheme, Preprocessing(size=recipe.size), timings,
                 extra, head="detector", backbone="lite0")


def _jsonable(value):
    try:
        return json.loads(json.dumps(value, default=float))
    except (TypeError, ValueError):
        return str(value)


# ---------------------------------------------------------------------------------------------------------------
# artefacts
# ---------------------------------------------------------------------------------------------------------------
def _write_json(path: Path, data) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def _save(ws, plan, iteration, model, records, k, scheme, preprocessing, timings, extra, *, head, backbone) -> dict:
    import torch

    folder = Path(ws.iteration_dir(iteration.id))
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "model.pt.tmp"
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, folder / "model.pt")
    tags = [{"id": t.id, "name": t.name, "type": t.type} for t in plan.tags]
    _write_json(folder / "evaluation.json", {
        "project_type": plan.project_type,
        "classification_type": plan.classification_type if plan.project_type == "Classification" else None,
        "k_folds": k, "scheme": scheme, "tags": tags, "records": records})
    return {
        "format": ARTEFACT_FORMAT, "iteration_id": iteration.id, "project_id": plan.project.id,
        "project_type": plan.project_type, "classification_type": plan.classification_type,
        "training_type": plan.training_type, "reserved_budget_in_hours": plan.budget_hours,
        "domain_id": plan.domain.id, "domain_name": plan.domain.name, "backbone": backbone, "head": head,
        "negative_index": _negative_index(plan) if plan.project_type == "Classification" else None,
        "num_classes": len(plan.tags), "tags": tags, "preprocessing": preprocessing.to_dict(),
        "seed": plan.seed, "fingerprint": plan.fingerprint,
        "train_image_count": len(plan.train), "holdout_image_count": len(plan.holdout),
        "skipped_tags": [t.name for t in plan.skipped_tags], "evaluation_scheme": scheme,
        "seconds_per_budget_hour": seconds_per_budget_hour(), "timings": timings, **extra,
        "created": datetime.now(timezone.utc).isoformat(),
    }


def load_artefact(ws, iteration_id: str) -> dict:
    """iteration.json of a trained iteration (raises when the iteration has no trained model)."""
    info = _artefact(ws, iteration_id)
    if not info or not (Path(ws.iteration_dir(iteration_id)) / "model.pt").exists():
        raise CvlabError("BadRequestIterationIsNotTrained",
                         f"Iteration {iteration_id} has no trained model (still training, failed, or deleted): "
                         "train the project and wait until the iteration is Completed.")
    return info


# ---------------------------------------------------------------------------------------------------------------
# CLI: cvlab train
# ---------------------------------------------------------------------------------------------------------------
def configure(parser) -> None:
    parser.add_argument("--workspace", "-w", default=None, help="workspace folder (default $CVLAB_WORKSPACE or "
                                                                "./workspace)")
    parser.add_argument("--project", "-p", required=True, help="project name or id")
    parser.add_argument("--advanced", action="store_true", help="Advanced training (fine-tuning) instead of Quick")
    parser.add_argument("--budget", type=int, default=1, help="reserved budget in hours for --advanced "
                                                              "(1 h = CVLAB_SECONDS_PER_BUDGET_HOUR s, default 60)")
    parser.add_argument("--force", action="store_true", help="train even if nothing changed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout", nargs="*", default=None, help="image ids to keep out of training")


def run(args) -> int:
    import cvlab

    ws = cvlab.open_workspace(args.workspace)
    project = _find_project(ws, args.project)
    recover_interrupted(ws)
    it = train_project(ws, project.id, "Advanced" if args.advanced else "Regular",
                       reserved_budget_in_hours=args.budget if args.advanced else 0, force_train=args.force,
                       seed=args.seed, holdout=args.holdout)
    print(f"{it.name} ({it.id}): {it.status}" + (f" - {it.training_error_details}"
                                                   if it.training_error_details else ""))
    if it.status != "Completed":
        return 1
    try:
        from cvlab.performance import get_iteration_performance
    except ImportError:
        return 0
    perf = get_iteration_performance(ws, project.id, it.id)
    ap = getattr(perf, "average_precision", None)
    print(f"precision {perf.precision:.3f}  recall {perf.recall:.3f}" + (f"  AP/mAP {ap:.3f}" if ap is not None
                                                                            else "") + " (threshold 0.5)")
    for tp in getattr(perf, "per_tag_performance", []) or []:
        ap_t = getattr(tp, "average_precision", None)
        print(f"  {tp.name:20s} precision {tp.precision:.3f}  recall {tp.recall:.3f}"
              + (f"  AP {ap_t:.3f}" if ap_t is not None else ""))
    return 0


def _find_project(ws, name_or_id: str):
    try:
        return ws.get_project(name_or_id)
    except CvlabError:
        found = ws.find_project(name_or_id)
        if found is None:
            raise CvlabError("NotFoundProject", f"No project called or with id {name_or_id!r}; list them with "
                                                "`cvlab lab` or ws.get_projects().") from None
        return found

"""train_project(): Azure's training validation, Quick/Advanced training, iterations and their evaluation records.

Quick (`Regular`) classification: frozen ImageNet embeddings (cached per image, see ``cvlab.embeddings``) and a
logistic-regression head; the iteration's model is the pretrained network with that head.  Advanced: the whole
network, starting from the Quick head (LP-FT), is fine-tuned with augmentation and early stopping inside a time
budget (one budget hour = ``CVLAB_SECONDS_PER_BUDGET_HOUR`` seconds of lab time, default 60).  Object detection goes
through ``cvlab.nets.detector``.

Modules: ``plan`` (Azure's validation, splits), ``classification``, ``detection``, ``outputs`` (the artefacts),
``progress``; this one runs the jobs (``cvlab.jobs``: one registry, the iterations' status rows are the truth).

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
import math
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cvlab import config
from cvlab.artefacts import INFO, load_artefact, write_json
from cvlab.errors import CvlabError
from cvlab.jobs import Jobs
from cvlab.workspace.store import storage_problem

from .classification import MAX_FINE_TUNE_EPOCHS, MAX_FOLDS, planned_epochs, train_classification
from .detection import DETECTION_SIZE, train_detection
from .plan import VALIDATION_FRACTION, Plan, make_plan
from .progress import CancelFlag, Progress

__all__ = ["DETECTION_SIZE", "MAX_FINE_TUNE_EPOCHS", "MAX_FOLDS", "VALIDATION_FRACTION", "admission",
           "cancel_training", "load_artefact", "planned_epochs", "recover_interrupted", "train_project", "wait"]

_train_lock = threading.Lock()          # one CPU-heavy training at a time per process (2 cores; global RNG seeding)
_project_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()
JOBS = Jobs("train")                    # the trainings this process runs, by iteration id
#: Workshop mode installs a fair FIFO queue here (``cvlab.workshop.TrainingQueue``): ``enqueue(ws, project_id,
#: iteration_id)`` returns None or a ticket whose ``with`` block waits for the iteration's turn (status Queued).
admission = None


def train_project(ws, project_id: str, training_type: str = "Regular", reserved_budget_in_hours: int = 0,
                  force_train: bool = False, selected_tags=None, seed: int = 0, holdout=None,
                  background: bool = False, progress=None, cancel=None, show_progress: bool = True,
                  seconds_per_budget_hour: float | None = None, detection_epochs: int | None = None):
    """Validate as Azure does, create an iteration (status Training) and train it: the SDK's ``train_project``.

    Returns the Iteration: Completed/Failed when ``background`` is False, still Training when True (a thread
    trains it; poll ``ws.get_iteration`` or call ``wait``). ``training_type`` is ``"Regular"`` (Quick) or
    ``"Advanced"``, which needs ``reserved_budget_in_hours`` >= 1; ``holdout`` lists image ids never trained on.
    ``progress(fraction, message)`` reports progress, ``cancel`` (an Event or a callable returning True) stops it.
    In cvlab also: ``seconds_per_budget_hour`` and ``detection_epochs`` (default: ``cvlab.config``).

    >>> it = train_project(ws, project.id, show_progress=False)       # doctest: +SKIP
    >>> it.status
    'Completed'
    """
    settings = config.settings()
    project = ws.get_project(project_id)
    with _locks_lock:
        lock = _project_locks.setdefault(project.id, threading.Lock())
    with lock:
        plan = make_plan(ws, project.id, training_type or "Regular", reserved_budget_in_hours, force_train,
                         selected_tags, seed, holdout,
                         settings.seconds_per_budget_hour if seconds_per_budget_hour is None else seconds_per_budget_hour,
                         settings.detection_epochs if detection_epochs is None else int(detection_epochs))
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
        event = JOBS.register(iteration.id, lease=ws.job_lease(iteration.id))  # running: recovery leaves it alone
    job = lambda: _run(ws, plan, iteration, progress, CancelFlag(event, cancel), show_progress, ticket)  # noqa: E731
    if background:
        JOBS.submit(iteration.id, job)
        return iteration if ticket is None else ws.get_iteration(project.id, iteration.id)  # maybe Queued
    JOBS.run(iteration.id, job)
    return ws.get_iteration(project.id, iteration.id)


def _run(ws, plan: Plan, iteration, callback, cancelled, show_progress, ticket=None) -> None:
    bar = Progress(f"{plan.project.name} / {iteration.name}", callback, show_progress)
    try:
        with ticket or contextlib.nullcontext(), _train_lock:
            started = time.monotonic()  # training time, not time spent waiting in the workshop queue
            _seed_everything(plan.seed)
            if plan.project_type == "ObjectDetection":
                info = train_detection(ws, plan, iteration, bar, cancelled)
            else:
                info = train_classification(ws, plan, iteration, bar, cancelled)
        elapsed = time.monotonic() - started
        info["timings"]["total_s"] = round(elapsed, 2)
        write_json(Path(ws.iteration_dir(iteration.id)) / INFO, info)
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
                            training_error_details=storage_problem(e) or f"{type(e).__name__}: {e}")
    finally:
        bar.close()


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def cancel_training(ws, iteration_id: str) -> None:
    """Ask a running training to stop; its iteration ends Failed with "Cancelled".

    An iteration marked Training that no thread of this process runs (e.g. after a crash) is marked at once.
    """
    iteration_id = str(iteration_id).lower()
    if JOBS.cancel(iteration_id):
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
    live = set(JOBS.running())
    for project in ws.get_projects():
        for it in ws.get_iterations(project.id):
            if it.status in ("Training", "Queued") and it.id not in live and not ws.job_running(it.id):
                ws.update_iteration(project.id, it.id, status="Failed", training_error_details="interrupted")
                fixed.append(it.id)
    return fixed


def wait(ws, project_id: str, iteration_id: str, timeout: float | None = None, poll: float = 0.2):
    """Block until a background training finishes; returns the final Iteration (its status row decides)."""
    JOBS.wait(str(iteration_id), timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        it = ws.get_iteration(project_id, iteration_id)
        if it.status not in ("Training", "Queued") or (deadline is not None and time.monotonic() > deadline):
            return it
        time.sleep(poll)

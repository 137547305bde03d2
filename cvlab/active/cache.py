"""An iteration's predictions on workspace images, computed once per (iteration, image content) and cached.

An iteration never changes, so its predictions are cached in memory and as
``<iteration dir>/suggestions/<sha256>.json`` (removed with the iteration).
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Sequence

from cvlab.errors import CvlabError
from cvlab.model import Image

_BATCH = 16          # images per predictor call


_memory: dict[tuple[str, str], list[dict]] = {}
_memory_lock = threading.Lock()
_MEMORY_CAP = 50_000


def _cache_file(ws, iteration_id: str, sha256: str) -> Path:
    return Path(ws.iteration_dir(iteration_id)) / "suggestions" / f"{sha256}.json"


def _remember(key: tuple[str, str], preds: list[dict]) -> None:
    with _memory_lock:
        if len(_memory) >= _MEMORY_CAP:
            _memory.clear()
        _memory[key] = preds


def _save_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _completed(ws, project_id: str, iteration_id: str):
    it = ws.get_iteration(project_id, iteration_id)
    if it.status != "Completed":
        raise CvlabError("BadRequestIterationIsNotTrained", f"{it.name} is {it.status}: suggestions need a "
                         "Completed iteration (wait for training to finish, or pick another iteration).")
    return it


def iteration_predictions(ws, project_id: str, iteration_id: str, images: Sequence[Image],
                          predictor=None) -> dict[str, list[dict]]:
    """Predictions of a Completed iteration for workspace images, ``{image id: [prediction dicts]}``.

    Computed once per (iteration, image content) and cached; ``predictor`` (anything with ``predict_batch``,
    e.g. the REST service's shared Predictor behind its inference semaphore) defaults to ``Predictor.load``.
    """
    it = _completed(ws, project_id, iteration_id)
    out: dict[str, list[dict]] = {}
    todo: list[Image] = []
    for im in images:
        key = (it.id, im.sha256)
        with _memory_lock:
            hit = _memory.get((str(ws.path),) + key)
        if hit is None:
            path = _cache_file(ws, it.id, im.sha256)
            try:
                hit = json.loads(path.read_text())
                _remember((str(ws.path),) + key, hit)
            except (OSError, ValueError):
                hit = None  # not cached yet (or a damaged file): predict again
        if hit is None:
            todo.append(im)
        else:
            out[im.id] = hit
    if todo:
        if predictor is None:
            from cvlab.predict import Predictor  # torch, only when something must be predicted

            predictor = Predictor.load(ws, it.id)
        for start in range(0, len(todo), _BATCH):
            chunk = todo[start:start + _BATCH]
            found = predictor.predict_batch([ws.read_image_bytes(im) for im in chunk])
            for im, preds in zip(chunk, found):
                preds = json.loads(json.dumps(preds))
                _save_json(_cache_file(ws, it.id, im.sha256), preds)
                _remember((str(ws.path), it.id, im.sha256), preds)
                out[im.id] = preds
    return out

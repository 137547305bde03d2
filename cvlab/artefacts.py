"""An iteration's files in ``ws.iteration_dir(id)``, the contract between training and its readers.

``model.pt`` (the state dict), ``iteration.json`` (``info``: tags in output order, backbone, head, preprocessing,
domain, training type, seed, timings) and ``evaluation.json`` (the records ``cvlab.performance`` reads; its
format is in ARCHITECTURE.md). Training writes them (``cvlab.training``); the Predictor and the exporters read
``info`` through ``load_artefact``. Every file is written to a temporary name and renamed, so a reader never
sees half a file.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

from .errors import CvlabError

ARTEFACT_FORMAT = 1
MODEL = "model.pt"
INFO = "iteration.json"
EVALUATION = "evaluation.json"


def _write_atomically(path: Path, data: bytes) -> None:
    """``data`` at ``path`` through a temporary name; on failure (a full disk) no half file is left behind."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data) -> None:
    """``data`` as JSON at ``path``, atomically."""
    _write_atomically(path, json.dumps(data, indent=1, default=str).encode())


def save_model(folder: Path, model) -> None:
    """The module's weights as ``model.pt``, atomically. Serialised in memory first: torch's own file writer
    reports a full disk as a bare RuntimeError ("unexpected pos"), Python's write as ENOSPC, which a failed
    training records as "the disk holding the workspace is full"."""
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    _write_atomically(folder / MODEL, buffer.getbuffer())


def read_info(ws, iteration_id: str) -> dict:
    """``iteration.json`` of an iteration, or {} when it has none (not trained, failed, deleted)."""
    path = Path(ws.iteration_dir(iteration_id)) / INFO
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def load_artefact(ws, iteration_id: str) -> dict:
    """iteration.json of a trained iteration (raises when the iteration has no trained model).

    >>> load_artefact(ws, iteration.id)["backbone"]      # doctest: +SKIP
    'lite0'
    """
    info = read_info(ws, iteration_id)
    if not info or not (Path(ws.iteration_dir(iteration_id)) / MODEL).exists():
        raise CvlabError("BadRequestIterationIsNotTrained",
                         f"Iteration {iteration_id} has no trained model (still training, failed, or deleted): "
                         "train the project and wait until the iteration is Completed.")
    return info

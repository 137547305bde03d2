"""An iteration's files in ``ws.iteration_dir(id)``, the contract between training and its readers.

``model.pt`` (the state dict), ``iteration.json`` (``info``: tags in output order, backbone, head, preprocessing,
domain, training type, seed, timings) and ``evaluation.json`` (the records ``cvlab.performance`` reads; its
format is in ARCHITECTURE.md). Training writes them (``cvlab.training``); the Predictor and the exporters read
``info`` through ``load_artefact``. Every file is written to a temporary name and renamed, so a reader never
sees half a file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import CvlabError

ARTEFACT_FORMAT = 1
MODEL = "model.pt"
INFO = "iteration.json"
EVALUATION = "evaluation.json"


def write_json(path: Path, data) -> None:
    """``data`` as JSON at ``path``, atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def save_model(folder: Path, model) -> None:
    """The module's weights as ``model.pt``, atomically."""
    import torch

    tmp = folder / (MODEL + ".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, folder / MODEL)


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

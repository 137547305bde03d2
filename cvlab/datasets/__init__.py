"""Synthetic datasets, sample data and file formats.

``generate(name, count, seed, size)`` returns labelled records from a registry of named, deterministic
generators (``parts``, ``parts-multilabel``, ``parts-subtle``, ``site``); ``formats`` reads and writes
folder-per-tag, COCO, VOC, YOLO and Custom Vision JSON; ``importing`` moves records in and out of a
Workspace; ``seed_default_workspace(ws)`` creates the sample projects from ``data/``.
"""
from __future__ import annotations

from pathlib import Path

from .records import DATA_DIR, NEGATIVE, DatasetInfo, Record, Region
from .registry import REGISTRY, dataset_names, generate, info, iter_generate



def seed_default_workspace(ws, data_dir: Path | None = None) -> dict[str, str]:
    """Create the sample projects from ``data/`` unless they exist (idempotent). Returns {name: project_id}."""
    from .samples import seed_samples

    return seed_samples(ws, data_dir or DATA_DIR)


__all__ = ["DATA_DIR", "NEGATIVE", "REGISTRY", "DatasetInfo", "Record", "Region", "dataset_names", "generate",
           "info", "iter_generate", "seed_default_workspace"]

"""Frozen-backbone embeddings, cached per (image sha256, backbone, input size) under the workspace.

Quick training and the cross-validation of every classification iteration only fit a linear head, so a retrain
embeds just the images it has not seen.  Files: ``<ws>/cache/emb/<backbone>-<size>/<sha[:2]>/<sha>.npy``
(float32 [1280]), written atomically so parallel trainings never read half a file.
"""
from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch

from cvlab.nets.backbones import PixelNormalize, imagenet_model, spec
from cvlab.nets.preprocess import Preprocessing

BATCH = 16
_lock = threading.Lock()
_extractors: dict[str, torch.nn.Module] = {}


def cache_dir(ws, backbone: str, size: int) -> Path:
    return Path(ws.path) / "cache" / "emb" / f"{spec(backbone).name}-{int(size)}"


def _path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / f"{sha256}.npy"


class _Extractor(torch.nn.Module):
    """Normalise + shared ImageNet trunk + global pool (the classifier's ``features``, without a copy)."""

    def __init__(self, backbone: str):
        super().__init__()
        self.normalize = PixelNormalize()
        self.model = imagenet_model(backbone)

    def forward(self, x):
        return self.model.forward_head(self.model.forward_features(self.normalize(x)), pre_logits=True)


def extractor(backbone: str) -> torch.nn.Module:
    key = spec(backbone).name
    with _lock:
        if key not in _extractors:
            _extractors[key] = _Extractor(key).eval()
        return _extractors[key]


@torch.inference_mode()
def embed_pil(images, backbone: str, size: int) -> np.ndarray:
    """Embed PIL images (no cache) -> float32 [N, 1280]."""
    pre = Preprocessing(size=size)
    net = extractor(backbone)
    out = [net(pre.batch(images[i:i + BATCH])).numpy() for i in range(0, len(images), BATCH)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, spec(backbone).num_features), np.float32)


def embed_images(ws, images, backbone: str, size: int, progress=None, cancel=None) -> np.ndarray:
    """Embeddings of workspace images (records with ``sha256``), computing only the uncached ones.

    ``progress(done, total)`` is called after each batch; ``cancel()`` returning True stops between batches.
    """
    root = cache_dir(ws, backbone, size)
    result: list[np.ndarray | None] = [None] * len(images)
    todo = []
    for i, img in enumerate(images):
        p = _path(root, img.sha256)
        if p.exists():
            try:
                result[i] = np.load(p)
                continue
            except (OSError, ValueError):
                pass  # a damaged cache file is simply recomputed
        todo.append(i)
    done = len(images) - len(todo)
    if progress:
        progress(done, len(images))
    for start in range(0, len(todo), BATCH):
        if cancel is not None and cancel():
            raise InterruptedError("Cancelled")
        chunk = todo[start:start + BATCH]
        vectors = embed_pil([ws.open_image(images[i]) for i in chunk], backbone, size)
        for i, v in zip(chunk, vectors):
            result[i] = v
            _save(_path(root, images[i].sha256), v)
        done += len(chunk)
        if progress:
            progress(done, len(images))
    if not images:
        return np.zeros((0, spec(backbone).num_features), np.float32)
    return np.stack(result).astype(np.float32)


def _save(path: Path, vector: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, vector.astype(np.float32))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

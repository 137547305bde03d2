"""Predictor: a trained iteration in memory -> Azure-shaped predictions.

``Predictor.load(ws, iteration_id)`` is cached per process (thread-safe).  Two backends run the same module:
``onnx`` (default; the module converted once with ``cvlab.export.convert.to_onnx`` and cached as
``<iteration dir>/predictor.onnx``; several times faster than eager torch on a laptop CPU, which the REST
endpoint's latency target needs: ``benchmarks/serve.md``) and ``torch`` (eager, ``torch.inference_mode``).
``CVLAB_PREDICTOR_BACKEND=torch|onnx`` (``cvlab.config``) forces one; if the ONNX conversion fails the Predictor
falls back to torch and says so in ``.backend_note``.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from cvlab import config, rules
from cvlab.artefacts import MODEL, load_artefact
from cvlab.errors import CvlabError
from cvlab.nets.preprocess import Preprocessing, to_pil

_cache: dict[tuple, "Predictor"] = {}  # insertion-ordered: the oldest loaded first


def _evict(keep_folder: str) -> None:
    """Drop older versions of this iteration, iterations whose folder is gone (deleted), and the oldest beyond
    the cache size (``CVLAB_PREDICTOR_CACHE``), so a long-running server does not grow with every iteration it
    ever served."""
    limit = config.settings().predictor_cache
    for key in [k for k in _cache if k[0] == keep_folder or not Path(k[0]).exists()]:
        del _cache[key]
        _load_locks.pop(key, None)
    while len(_cache) >= limit:
        _load_locks.pop(next(iter(_cache)), None)
        del _cache[next(iter(_cache))]
_cache_lock = threading.Lock()
_load_locks: dict[tuple, threading.Lock] = {}


def build_module(info: dict):
    """The torch module of an iteration (architecture from iteration.json; weights loaded by the caller)."""
    if info["project_type"] == "ObjectDetection":
        from cvlab.nets.detector import build_detector

        return build_detector(int(info["num_classes"]), size=int(info["preprocessing"]["size"]),
                              seed=int(info.get("seed", 0)))
    from cvlab.nets.classifier import Classifier

    return Classifier(info["backbone"], int(info["num_classes"]), multilabel=info["head"] == "sigmoid",
                      negative_index=info.get("negative_index"))


class Predictor:
    """A trained iteration in memory: ``predict(image)`` gives Azure-shaped predictions.

    >>> Predictor.load(ws, iteration.id).predict("photo.jpg")[0]["tag_name"]      # doctest: +SKIP
    'cracked'
    """

    def __init__(self, iteration_id: str, info: dict, module, folder: Path, backend: str | None = None):
        self.iteration_id = iteration_id
        self.info = info
        self.project_type = info["project_type"]
        self.classification_type = info.get("classification_type")
        self.tags = list(info["tags"])
        self.preprocessing = Preprocessing.from_dict(info["preprocessing"])
        self.module = module.eval()
        self._runner = None
        self.backend_note = ""
        self.backend = self._select_backend(folder, backend or config.settings().predictor_backend)

    # -- loading ------------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, ws, iteration_id: str, backend: str | None = None) -> "Predictor":
        """The iteration's Predictor, built once per process (and rebuilt if its model file changes)."""
        iteration_id = str(iteration_id).strip().lower()
        folder = Path(ws.iteration_dir(iteration_id))
        weights = folder / MODEL

        def cache_key():
            return (str(folder.resolve()), weights.stat().st_mtime_ns, backend or config.settings().predictor_backend)
        try:  # the hot path (every prediction): no iteration.json read (benchmarks/serve.md)
            cached = _cache.get(cache_key())
        except FileNotFoundError:
            cached = None
        if cached is not None:
            return cached
        info = load_artefact(ws, iteration_id)  # raises when the iteration has no trained model
        key = cache_key()
        with _cache_lock:
            if key in _cache:
                return _cache[key]
            lock = _load_locks.setdefault(key, threading.Lock())
        with lock:
            with _cache_lock:
                if key in _cache:
                    return _cache[key]
            import torch

            module = build_module(info)
            module.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            predictor = cls(iteration_id, info, module, folder, backend)
            with _cache_lock:
                _evict(keep_folder=key[0])
                _cache[key] = predictor
            return predictor

    @staticmethod
    def clear_cache() -> None:
        """Forget every loaded iteration (the next ``load`` builds it again)."""
        with _cache_lock:
            _cache.clear()
            _load_locks.clear()

    def _select_backend(self, folder: Path, wanted: str) -> str:
        if wanted not in ("onnx", "torch"):
            raise CvlabError("BadRequest", f"The predictor backend (CVLAB_PREDICTOR_BACKEND or backend=) must be "
                             f"'onnx' or 'torch', not {wanted!r}.")
        if wanted == "torch":
            return "torch"
        try:
            from cvlab.export.convert import OnnxRunner, to_onnx

            path = folder / "predictor.onnx"
            if not path.exists() or path.stat().st_mtime_ns < (folder / MODEL).stat().st_mtime_ns:
                tmp = folder / f"predictor.{threading.get_ident()}.tmp.onnx"
                to_onnx(self.module, self.project_type, self.preprocessing.size, [t["name"] for t in self.tags], tmp)
                os.replace(tmp, path)
            self._runner = OnnxRunner(path, threads=min(2, os.cpu_count() or 1))
            return "onnx"
        except Exception as e:  # noqa: BLE001 - eager torch gives the same numbers, only slower
            self.backend_note = f"ONNX backend unavailable ({type(e).__name__}: {e}); using torch"
            return "torch"

    # -- inference ----------------------------------------------------------------------------------------------
    def _forward(self, x: np.ndarray):
        if self.backend == "onnx":
            if self.project_type == "ObjectDetection":  # exported detector takes one image at a time
                outs = [self._runner(x[i:i + 1]) for i in range(len(x))]
                return outs
            return self._runner(x)[0]
        import torch

        with torch.inference_mode():
            out = self.module(torch.from_numpy(x))
        if self.project_type == "ObjectDetection":
            boxes, classes, scores = (t.numpy() for t in out)
            return [(boxes[i:i + 1], classes[i:i + 1], scores[i:i + 1]) for i in range(len(x))]
        return out.numpy()

    def predict_batch(self, images) -> list[list[dict]]:
        """Predictions for several images (bytes, paths or PIL images), in input order."""
        pils = [to_pil(im) for im in images]
        if not pils:
            return []
        x = np.stack([self.preprocessing.array(im) for im in pils])
        out = self._forward(x)
        if self.project_type == "ObjectDetection":
            return [self._detections(*o) for o in out]
        return [self._classes(row) for row in out]

    def predict(self, image) -> list[dict]:
        """Azure-shaped predictions for one image: classification lists every tag (probability desc, no box);
        detection lists boxes {left, top, width, height} (normalised), best first, at most 200."""
        return self.predict_batch([image])[0]

    def _entry(self, index: int, probability: float, box: dict | None) -> dict:
        tag = self.tags[int(index)]
        return {"tag_id": tag["id"], "tag_name": tag["name"], "tag_type": tag.get("type", "Regular"),
                "probability": float(probability), "bounding_box": box}

    def _classes(self, row: np.ndarray) -> list[dict]:
        order = np.argsort(-row, kind="stable")
        return [self._entry(i, row[i], None) for i in order]

    def _detections(self, boxes, classes, scores) -> list[dict]:
        boxes, classes, scores = np.asarray(boxes)[0], np.asarray(classes)[0], np.asarray(scores)[0]
        order = [i for i in np.argsort(-scores, kind="stable") if scores[i] > 0]
        out = []
        for i in order:
            x1, y1, x2, y2 = (float(np.clip(v, 0.0, 1.0)) for v in boxes[i])
            if x2 <= x1 or y2 <= y1:  # a box squeezed to nothing at the image edge says nothing
                continue
            out.append(self._entry(classes[i], scores[i],
                                   {"left": x1, "top": y1, "width": x2 - x1, "height": y2 - y1}))
        return out[:rules.limit("regions_per_image_prediction")]  # Azure: at most 200 regions

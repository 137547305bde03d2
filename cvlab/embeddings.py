"""Frozen-backbone embeddings of images and of their augmented views, cached per image content under the workspace.

Quick training and the cross-validation of every classification iteration only fit a linear head, so a retrain
embeds just the images it has not seen.  Files: ``<ws>/cache/emb/<backbone>-<size>-<runtime>/<view>/<sha[:2]>/
<sha>.npy`` (float32 [1280]), written atomically so parallel trainings never read half a file.

Runtime: onnxruntime by default (``CVLAB_EMBEDDING_RUNTIME=onnx|torch``).  The trunk is exported once per machine
to ``$CVLAB_CACHE_DIR`` (default ``~/.cache/cvlab``), keyed by the weights, torch and timm versions; onnxruntime
gives the same embeddings as eager torch to ~1e-5 relative (tests/test_embeddings_runtime.py) at 3-6x the speed
on 2 cores.  The cache folder names the runtime, so one workspace never mixes the two.

Pipeline: a thread pool decodes, EXIF-orients, crops and resizes the next batches (Pillow releases the GIL)
while the runtime embeds the current one.

Views (``VIEWS``) are deterministic functions of the image and its sha256 (a crop's position is drawn from a
generator seeded by the hash and the view's name), so an image always gets the same views, in any order, in
any process, and they can be cached like the plain embedding.
"""
from __future__ import annotations

import collections
import hashlib
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from cvlab.nets.backbones import PixelNormalize, imagenet_model, spec, weights_path
from cvlab.nets.preprocess import Preprocessing

BATCH = 16
RUNTIME_ENV = "CVLAB_EMBEDDING_RUNTIME"
CACHE_DIR_ENV = "CVLAB_CACHE_DIR"
DECODE_THREADS = 2
ONNX_OPSET = 17
_lock = threading.Lock()
_extractors: dict[str, torch.nn.Module] = {}
_sessions: dict[tuple, object] = {}


# ---------------------------------------------------------------------------------------------------------------
# views
# ---------------------------------------------------------------------------------------------------------------
def _view_rng(sha256: str, view: str) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(f"{sha256}:{view}".encode()).hexdigest()[:16], 16))


def _crop(img: Image.Image, rng: np.random.Generator, scale=(0.55, 1.0), ratio=(0.8, 1.25)) -> Image.Image:
    """A random-resized-crop window (area share ``scale``, aspect change ``ratio``), like torchvision's."""
    w, h = img.size
    area, aspect = rng.uniform(*scale), np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
    cw, ch = min(w, w * np.sqrt(area * aspect)), min(h, h * np.sqrt(area / aspect))
    x0, y0 = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
    return img.crop((round(x0), round(y0), round(x0 + cw), round(y0 + ch)))


def _erase(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A grey block over 8-20 % of the picture (something in front of the subject), mirrored half the time."""
    w, h = img.size
    area, aspect = rng.uniform(0.08, 0.2), np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
    bw, bh = min(w, w * np.sqrt(area * aspect)), min(h, h * np.sqrt(area / aspect))
    x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
    out = img.copy()
    out.paste((118, 118, 118), (round(x0), round(y0), round(x0 + bw), round(y0 + bh)))
    return ImageOps.mirror(out) if rng.random() < 0.5 else out


def view_image(img: Image.Image, view: str, sha256: str) -> Image.Image:
    """The named view of an image: ``orig``, ``flip`` (mirror), ``crop<k>`` (random-resized crop, mirrored half
    the time), ``tight<k>`` (a crop of 40-75 % of the area: closer in on the subject), ``erase<k>``."""
    if view == "orig":
        return img
    if view == "flip":
        return ImageOps.mirror(img)
    rng = _view_rng(sha256, view)
    if view.startswith("crop"):
        out = _crop(img, rng)
    elif view.startswith("tight"):
        out = _crop(img, rng, scale=(0.4, 0.75))
    elif view.startswith("erase"):
        return _erase(img, rng)
    else:
        raise ValueError(f"unknown view {view!r}")
    return ImageOps.mirror(out) if rng.random() < 0.5 else out


# ---------------------------------------------------------------------------------------------------------------
# runtimes
# ---------------------------------------------------------------------------------------------------------------
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


def runtime() -> str:
    from cvlab.config import settings

    value = settings().embedding_runtime
    if value not in ("onnx", "torch"):
        from cvlab.errors import CvlabError

        raise CvlabError("BadRequest", f"{RUNTIME_ENV} must be 'onnx' or 'torch', not {value!r}.")
    return value


def machine_cache_dir() -> Path:
    """Per-machine cache of derived files (the exported trunks): $CVLAB_CACHE_DIR, else $XDG_CACHE_HOME/cvlab."""
    from cvlab.config import settings

    return settings().cache_dir


def _onnx_path(backbone: str, size: int) -> Path:
    import timm

    s = spec(backbone)
    w = weights_path(s.name)
    key = hashlib.sha256(f"{w.name}:{w.stat().st_size}:{torch.__version__}:{timm.__version__}:{ONNX_OPSET}"
                         .encode()).hexdigest()[:12]
    return machine_cache_dir() / "onnx" / f"extractor-{s.name}-{int(size)}-{key}.onnx"


def _session(backbone: str, size: int):
    """An onnxruntime session of the trunk at one input size (exported on first use, then cached on disk and in
    the process; TF "same" padding is traced for that size, so each size has its own file)."""
    import onnxruntime

    path = _onnx_path(backbone, size)
    with _lock:
        if path in _sessions:
            return _sessions[path]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.onnx")
        os.close(fd)
        try:
            from cvlab.export.convert import _CONVERT_LOCK, _quiet

            net = extractor(backbone)
            with _CONVERT_LOCK, _quiet(), torch.inference_mode(False), torch.no_grad():
                torch.onnx.export(net, (torch.zeros(1, 3, size, size),), tmp, input_names=["pixels"],
                                  output_names=["embedding"], opset_version=ONNX_OPSET, dynamo=False,
                                  dynamic_axes={"pixels": {0: "batch"}, "embedding": {0: "batch"}})
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = min(2, os.cpu_count() or 1)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # see export.convert.OnnxRunner
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    with _lock:
        return _sessions.setdefault(path, session)


def prepare(backbone: str, size: int) -> None:
    """Build (or load) the runtime for a backbone and size now, e.g. before timing a training: the ONNX export
    happens once per machine (~5-25 s) and is cached in ``machine_cache_dir()``."""
    if runtime() == "onnx":
        _session(backbone, size)


def _embed_batch(pixels: np.ndarray, backbone: str, which: str) -> np.ndarray:
    if which == "onnx":
        return _session(backbone, pixels.shape[-1]).run(None, {"pixels": np.ascontiguousarray(pixels, np.float32)})[0]
    with torch.inference_mode():
        return extractor(backbone)(torch.from_numpy(pixels)).numpy()


def embed_pil(images, backbone: str, size: int, runtime_name: str | None = None) -> np.ndarray:
    """Embed PIL images (no cache) -> float32 [N, 1280]."""
    pre = Preprocessing(size=size)
    which = runtime_name or runtime()
    out = [_embed_batch(pre.batch(images[i:i + BATCH]).numpy(), backbone, which)
           for i in range(0, len(images), BATCH)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, spec(backbone).num_features), np.float32)


# ---------------------------------------------------------------------------------------------------------------
# cached, pipelined embedding of workspace images
# ---------------------------------------------------------------------------------------------------------------
def cache_dir(ws, backbone: str, size: int, runtime_name: str | None = None) -> Path:
    return Path(ws.path) / "cache" / "emb" / f"{spec(backbone).name}-{int(size)}-{runtime_name or runtime()}"


def _path(root: Path, view: str, sha256: str) -> Path:
    return root / view / sha256[:2] / f"{sha256}.npy"


def open_training_image(ws, image) -> Image.Image:
    """A stored image for training, or Azure's BadRequestImageFormat naming the image when its file no longer
    decodes (damaged or missing on disk), so the learner knows which image to delete or upload again."""
    from cvlab.errors import CvlabError

    try:
        return ws.open_image(image)
    except (CvlabError, OSError, ValueError) as e:
        reason = e.message if isinstance(e, CvlabError) else f"{type(e).__name__}: {e}"
        name = getattr(image, "original_name", None) or image.id
        raise CvlabError("BadRequestImageFormat",
                         f"Training image {name!r} (id {image.id}) could not be decoded ({reason}). Delete it "
                         "(or upload it again), then train again; earlier iterations are unchanged.") from None


def embed_images(ws, images, backbone: str, size: int, progress=None, cancel=None) -> np.ndarray:
    """Embeddings [N, 1280] of workspace images (records with ``sha256``), computing only the uncached ones."""
    return embed_views(ws, images, backbone, size, ("orig",), progress, cancel)[:, 0]


def embed_views(ws, images, backbone: str, size: int, views=("orig",), progress=None, cancel=None) -> np.ndarray:
    """Embeddings [N, V, 1280] of the named ``views`` of workspace images, computing only the uncached ones.

    ``progress(done, total)`` is called after each batch (counted in views); ``cancel()`` returning True stops
    between batches with InterruptedError.  Decoding runs ahead in a thread pool (``DECODE_THREADS``)."""
    views = tuple(views)
    which = runtime()
    root = cache_dir(ws, backbone, size, which)
    dim = spec(backbone).num_features
    result = np.zeros((len(images), len(views), dim), np.float32)
    todo: dict[int, list[int]] = {}
    for i, img in enumerate(images):
        for j, v in enumerate(views):
            p = _path(root, v, img.sha256)
            try:
                result[i, j] = np.load(p)
                continue
            except (OSError, ValueError):
                pass  # missing, or a damaged cache file: computed again
            todo.setdefault(i, []).append(j)
    total = len(images) * len(views)
    done = total - sum(len(js) for js in todo.values())
    if progress:
        progress(done, total)
    if not todo:
        return result
    pre = Preprocessing(size=size)

    def pixels(i):  # runs in the pool: decode once, then every missing view of this image
        pil = open_training_image(ws, images[i])
        return i, [pre.array(view_image(pil, views[j], images[i].sha256)) for j in todo[i]]

    order = list(todo)
    with ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="cvlab-decode") as pool:
        pending = collections.deque()
        queued = 0
        batch_px, batch_at = [], []

        def flush():
            nonlocal done
            if not batch_px:
                return
            vectors = _embed_batch(np.stack(batch_px), backbone, which)
            for (i, j), v in zip(batch_at, vectors):
                result[i, j] = v
                _save(_path(root, views[j], images[i].sha256), v)
            done += len(batch_px)
            batch_px.clear()
            batch_at.clear()
            if progress:
                progress(done, total)

        while queued < len(order) or pending:
            while queued < len(order) and len(pending) < 2 * BATCH:  # decode about two batches ahead
                pending.append(pool.submit(pixels, order[queued]))
                queued += 1
            if cancel is not None and cancel():
                for f in pending:
                    f.cancel()
                raise InterruptedError("Cancelled")
            i, arrays = pending.popleft().result()
            for j, a in zip(todo[i], arrays):
                batch_px.append(a)
                batch_at.append((i, j))
            if len(batch_px) >= BATCH:
                flush()
        flush()
    return result


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

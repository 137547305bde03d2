"""Every ``CVLAB_*`` setting in one place: its type, its default and what it means.

Settings are environment variables, read when a value is asked for (a notebook may set one after
``import cvlab``), and nowhere else: code that needs one calls ``settings().name``; a value one call needs
different is passed as an argument, never through ``os.environ``. The README's table of settings is
``table()`` (a test keeps the two equal).

>>> settings({"CVLAB_SECONDS_PER_BUDGET_HOUR": "8"}).seconds_per_budget_hour
8.0
>>> settings({}).predictor_backend
'onnx'
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import CvlabError

#: The folder holding the ``cvlab`` package; a cvlab checkout when ``notebooks/`` lies beside the package.
REPO = Path(__file__).resolve().parent.parent


def checkout() -> Path | None:
    """The cvlab repository this package runs from (an editable install or ``PYTHONPATH``), or None."""
    return REPO if (REPO / "notebooks").is_dir() and (REPO / "pyproject.toml").is_file() else None


def _number(kind: type, minimum: float) -> Callable[[str, str], Any]:
    def parse(name: str, raw: str):
        try:
            value = kind(raw.strip())
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise CvlabError("BadRequest", f"{name}={raw!r}: use a {'whole ' if kind is int else ''}number of at "
                             f"least {minimum:g} (or unset it for the default).")
        return value
    return parse


def _text(name: str, raw: str) -> str:
    return raw.strip()


def _choice(name: str, raw: str) -> str:
    return raw.strip().lower()


def _folder(name: str, raw: str) -> Path:
    return Path(raw).expanduser()


class Setting:
    """One ``CVLAB_*`` variable: read from the environment each time the attribute is read."""

    def __init__(self, env: str, default: Any, shown_default: str, meaning: str,
                 parse: Callable[[str, str], Any] = _text):
        self.env, self.default, self.shown_default, self.meaning, self.parse = env, default, shown_default, \
            meaning, parse

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        raw = obj.environ.get(self.env)
        if raw is None or not raw.strip():
            return self.default() if callable(self.default) else self.default
        return self.parse(self.env, raw)


def _default_workspace() -> Path:
    root = checkout()
    return (root if root is not None else Path.cwd()) / "workspace"


class Settings:
    """The settings of one environment (``os.environ`` unless given a mapping)."""

    workspace = Setting(
        "CVLAB_WORKSPACE", _default_workspace, "`workspace/` of the cvlab checkout, else `./workspace`",
        "the learner's workspace folder: `cvlab.open_workspace()`, `cvlab lab`, the notebooks, every command",
        _folder)
    profile = Setting(
        "CVLAB_PROFILE", "learner", "`learner`",
        "the curriculum's sizes: `learner` (the whole course in about 4 minutes on 2 cores) or `fast` (CI runs every "
        "notebook)",
        _choice)
    seconds_per_budget_hour = Setting(
        "CVLAB_SECONDS_PER_BUDGET_HOUR", 60.0, "`60`",
        "seconds of lab time one hour of Advanced training's reserved budget lasts", _number(float, 0))
    detection_epochs = Setting(
        "CVLAB_DETECTION_EPOCHS", None, "unset (planned by the detector)",
        "a fixed epoch count for every detector training (short demos and tests)", _number(int, 1))
    predictor_backend = Setting(
        "CVLAB_PREDICTOR_BACKEND", "onnx", "`onnx`",
        "what runs a trained iteration: `onnx` (onnxruntime, faster) or `torch` (eager PyTorch)", _choice)
    predictor_cache = Setting(
        "CVLAB_PREDICTOR_CACHE", 32, "`32`",
        "how many trained iterations a process keeps loaded (a workshop room serves many)", _number(int, 1))
    embedding_runtime = Setting(
        "CVLAB_EMBEDDING_RUNTIME", "onnx", "`onnx`",
        "what computes the frozen trunk's embeddings in training: `onnx` (onnxruntime, the same numbers, faster) or "
        "`torch`", _choice)
    cache_dir = Setting(
        "CVLAB_CACHE_DIR", lambda: Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cvlab",
        "`~/.cache/cvlab` (or `$XDG_CACHE_HOME/cvlab`)",
        "the machine's cache of derived files (the trunks exported to ONNX once per machine)", _folder)
    allow_private_urls = Setting(
        "CVLAB_ALLOW_PRIVATE_URLS", "", "unset (public addresses only)",
        "which non-public hosts the `*_url` operations may fetch from: `1` any (a lab serving its own images), or "
        "a list such as `127.0.0.1:8000,10.0.0.0/8`")
    export_link_seconds = Setting(
        "CVLAB_EXPORT_LINK_SECONDS", 3600, "`3600`",
        "how long an export's signed download link (`downloadUri`) stays valid", _number(int, 1))
    training_key = Setting(
        "CVLAB_TRAINING_KEY", None, "the workspace's own key, made once",
        "the training key the local endpoint accepts (`cvlab serve --training-key` wins)")
    prediction_key = Setting(
        "CVLAB_PREDICTION_KEY", None, "the workspace's own key, made once",
        "the prediction key the local endpoint accepts (`cvlab serve --prediction-key` wins)")
    workshop_url = Setting(
        "CVLAB_WORKSHOP_URL", None, "unset (or what `cvlab lab --join` saved)",
        "the workshop this learner's course reports progress to (JupyterHub sets it with `CVLAB_WORKSHOP_KEY`)")
    workshop_key = Setting(
        "CVLAB_WORKSHOP_KEY", None, "unset",
        "the learner's seat key for `CVLAB_WORKSHOP_URL` (the seat's training key from the handout)")

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = os.environ if environ is None else environ

    def is_set(self, name: str) -> bool:
        """Whether the learner set this setting (rather than leaving its default)."""
        raw = self.environ.get(getattr(Settings, name).env)
        return raw is not None and bool(raw.strip())

    def __repr__(self) -> str:
        shown = {s.name: "***" if s.name.endswith("_key") else getattr(self, s.name) for s in all_settings()}
        return f"Settings({shown})"


def settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The current settings (each read from the environment when its attribute is read)."""
    return Settings(environ)


def all_settings() -> list[Setting]:
    """Every setting, in the order of the README's table."""
    return [v for v in vars(Settings).values() if isinstance(v, Setting)]


def table() -> str:
    """The settings as the Markdown table the README shows."""
    rows = ["| setting | default | what it sets |", "|---|---|---|"]
    rows += [f"| `{s.env}` | {s.shown_default} | {s.meaning} |" for s in all_settings()]
    return "\n".join(rows)

"""Records: plain snake_case dataclasses. Ids are lowercase GUID strings; times are tz-aware UTC datetimes.

`Project` also carries a private reference to its workspace (not a field: excluded from repr, eq and asdict) so
that a notebook can write `project.add_images(...)`, `project.train()`, `project.tagger()`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence


def _lazy(module: str, name: str):
    """Import lazily so that `import cvlab` never pulls in torch or ipywidgets."""
    return getattr(importlib.import_module(module), name)


@dataclass
class Tag:
    id: str
    project_id: str
    name: str
    description: str = ""
    type: str = "Regular"
    image_count: int = 0


@dataclass
class ImageTag:
    tag_id: str
    tag_name: str
    created: datetime


@dataclass
class ImageRegion:
    region_id: str
    tag_id: str
    tag_name: str
    created: datetime
    left: float
    top: float
    width: float
    height: float


@dataclass
class Image:
    id: str
    project_id: str
    sha256: str
    original_name: str | None
    width: int
    height: int
    format: str
    created: datetime
    tags: list[ImageTag] = field(default_factory=list)
    regions: list[ImageRegion] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    @property
    def tag_ids(self) -> list[str]:
        return [t.tag_id for t in self.tags]

    @property
    def tag_names(self) -> list[str]:
        return [t.tag_name for t in self.tags]


@dataclass
class Iteration:
    id: str
    project_id: str
    name: str
    status: str = "Training"
    created: datetime | None = None
    last_modified: datetime | None = None
    trained_at: datetime | None = None
    domain_id: str | None = None
    classification_type: str | None = None
    training_type: str = "Regular"
    reserved_budget_in_hours: int = 0
    training_time_in_minutes: int = 0
    publish_name: str | None = None
    original_publish_resource_id: str | None = None
    exportable: bool = False
    training_error_details: str | None = None
    seed: int = 0
    queue_position: int | None = None


@dataclass
class StoredPrediction:
    """A stored prediction (quick test or prediction API with storage): the image blob plus its predictions."""

    id: str
    project_id: str
    iteration_id: str | None
    created: datetime
    sha256: str
    width: int
    height: int
    predictions: list[dict] = field(default_factory=list)
    application: str | None = None
    domain_id: str | None = None


@dataclass
class Export:
    id: str
    project_id: str
    iteration_id: str
    platform: str
    flavor: str | None
    status: str = "Exporting"
    download_uri: str = ""
    path: str | None = None  # the artefact on disk, relative to the workspace (when Done)
    created: datetime | None = None
    last_modified: datetime | None = None
    newer_version_available: bool = False
    error: str | None = None


@dataclass(frozen=True)
class ImageEntry:
    """One image to create: its bytes, an optional name, its whole-image tags and its regions (dicts with
    tag_id, left, top, width, height, normalised 0..1)."""

    data: bytes
    name: str | None = None
    tag_ids: Sequence[str] = ()
    regions: Sequence[dict] = ()
    source_url: str | None = None


@dataclass
class ImageCreateResult:
    source_url: str | None
    status: str
    image: Image | None = None
    message: str | None = None  # cvlab extra: why an entry failed, in words (not on Azure's wire)


@dataclass
class ImageCreateSummary:
    is_batch_successful: bool
    images: list[ImageCreateResult] = field(default_factory=list)

    def by_status(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.images:
            out[r.status] = out.get(r.status, 0) + 1
        return out


@dataclass
class Project:
    id: str
    name: str
    description: str
    domain_id: str
    classification_type: str
    project_type: str
    target_export_platforms: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    created: datetime | None = None
    last_modified: datetime | None = None
    status: str = "Succeeded"

    # -- workspace binding (plain attribute, not a dataclass field) ----------------------------------------------
    def _bind(self, ws) -> "Project":
        self._ws = ws
        return self

    @property
    def workspace(self):
        ws = getattr(self, "_ws", None)
        if ws is None:
            raise RuntimeError("This Project is not bound to a workspace: get it with ws.get_project(id).")
        return ws

    @property
    def is_detection(self) -> bool:
        return self.project_type == "ObjectDetection"

    @property
    def domain(self):
        from .domains import get_domain
        return get_domain(self.domain_id)

    def refresh(self) -> "Project":
        return self.workspace.get_project(self.id)

    # -- convenience for notebooks --------------------------------------------------------------------------------
    def tags(self) -> list[Tag]:
        return self.workspace.get_tags(self.id)

    def tag(self, name_or_id: str) -> Tag:
        """A tag by name (case-insensitive) or id."""
        return self.workspace.resolve_tag(self.id, name_or_id)

    def create_tag(self, name: str, description: str = "", type: str = "Regular") -> Tag:
        return self.workspace.create_tag(self.id, name, description, type)

    def images(self, **kwargs) -> list[Image]:
        return self.workspace.get_images(self.id, **kwargs)

    def image_count(self, **kwargs) -> int:
        return self.workspace.get_image_count(self.id, **kwargs)

    def add_images(self, items, tags=None, regions=None, create_missing_tags: bool = True) -> ImageCreateSummary:
        """Add files/bytes (any number, sent in batches of 64) with tag names/ids; see Workspace.add_images."""
        return self.workspace.add_images(self.id, items, tags=tags, regions=regions,
                                         create_missing_tags=create_missing_tags)

    def iterations(self) -> list[Iteration]:
        return self.workspace.get_iterations(self.id)

    def latest_iteration(self, status: str | None = "Completed") -> Iteration | None:
        """The most recently trained iteration of ``status`` (None: any), or None (``ws.latest_iteration``)."""
        return self.workspace.latest_iteration(self.id, status)

    def train(self, **kwargs):
        return _lazy("cvlab.training", "train_project")(self.workspace, self.id, **kwargs)

    def performance(self, iteration_id: str | None = None, **kwargs):
        if iteration_id is None:
            it = self.latest_iteration()
            if it is None:
                from .errors import CvlabError
                raise CvlabError("NotFoundIteration", f"Project {self.name!r} has no trained iteration yet: "
                                                      "call project.train() first.")
            iteration_id = it.id
        return _lazy("cvlab.performance", "get_iteration_performance")(self.workspace, self.id, iteration_id, **kwargs)

    def tagger(self, **kwargs) -> Any:
        return _lazy("cvlab.widgets", "tagger")(self, **kwargs)

    def box_labeler(self, **kwargs) -> Any:
        return _lazy("cvlab.widgets", "box_labeler")(self, **kwargs)

    def quick_test(self, iteration: Any = None, **kwargs) -> Any:
        return _lazy("cvlab.widgets", "quick_test")(self, iteration, **kwargs)

    def compare_iterations(self, a: Any = None, b: Any = None, **kwargs) -> Any:
        return _lazy("cvlab.widgets", "compare_iterations")(self, a, b, **kwargs)

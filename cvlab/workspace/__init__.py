"""The Workspace: the single source of truth for everything a learner makes.

One class, ``Workspace``, assembled from one mixin per section; each module holds one section:

- ``store``: the folder, SQLite connections and transactions, migrations (``schema``);
- ``blobs``: the content-addressed image store (crash safety is explained there);
- ``settings``: settings, pricing tier, monthly usage;
- ``projects``, ``tags``;
- ``images_read``, ``images_create``, ``images_label``: reading, creating, deleting and labelling images;
- ``iterations``, ``predictions`` (stored predictions), ``exports`` (export records and their files);
- ``leases``: which running rows (Training, Exporting, Importing) a live process is still working on;
- ``records``: JSON columns read without failing on a bad record already on disk;
- ``integrity``: ``check()``, what ``cvlab doctor`` prints.

Method names follow the Azure SDK (``create_project``, ``get_tagged_images`` is ``get_images(tagging_status=
"Tagged")``, ...); every rule violation raises ``CvlabError`` with Azure's code.
"""
from __future__ import annotations

import os
from pathlib import Path

from .. import config
from .blobs import BlobsMixin
from .exports import ExportsMixin
from .images_create import IMAGE_SUFFIXES, ImageEntry, ImagesCreateMixin
from .images_label import ImagesLabelMixin
from .images_read import ImagesReadMixin, parse_metadata_filter
from .integrity import IntegrityMixin
from .iterations import IterationsMixin
from .leases import LeasesMixin
from .predictions import EXPIRY_INTERVAL_S, PredictionsMixin
from .projects import ProjectsMixin
from .records import RecordsMixin
from .schema import MIGRATIONS, SCHEMA_VERSION
from .settings import SettingsMixin
from .store import DB_NAME, Store
from .tags import TagsMixin

__all__ = ["DB_NAME", "EXPIRY_INTERVAL_S", "IMAGE_SUFFIXES", "MIGRATIONS", "SCHEMA_VERSION", "ImageEntry",
           "Workspace", "default_workspace_path", "open_workspace", "parse_metadata_filter"]


class Workspace(SettingsMixin, ProjectsMixin, TagsMixin, ImagesReadMixin, ImagesCreateMixin, ImagesLabelMixin,
                IterationsMixin, PredictionsMixin, ExportsMixin, IntegrityMixin, LeasesMixin, RecordsMixin, BlobsMixin,
                Store):
    """A folder holding projects, tags, images, labels, iterations, predictions, exports and settings.

    Thread-safe (pooled SQLite connections); a crash never leaves a row without its image.

    >>> ws = Workspace("/tmp/doc-ws")
    >>> project = ws.create_project("Parts")
    >>> ws.get_project(project.id).name
    'Parts'
    >>> ws.delete_project(project.id); ws.close()
    """


def default_workspace_path() -> Path:
    """Where ``open_workspace()``, ``cvlab lab`` and the curriculum keep the learner's work when given no folder:
    ``$CVLAB_WORKSPACE``, else ``./workspace`` under the current directory (``cvlab.config``)."""
    return config.settings().workspace


def open_workspace(path: str | os.PathLike | None = None) -> Workspace:
    """Open (or create) the workspace at ``path``, else ``default_workspace_path()``.

    >>> ws = open_workspace("/tmp/doc-ws")
    >>> ws.path.name
    'doc-ws'
    """
    return Workspace(path if path is not None else default_workspace_path())

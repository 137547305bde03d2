"""Read and write labelled image sets: folder-per-tag, COCO JSON, Pascal VOC XML, YOLO txt, Custom Vision JSON.

Every reader returns a :class:`LabeledSet` of :class:`~cvlab.datasets.records.Record` (with ``path`` set) and
every writer takes records, so any format converts to any other. Box conversions live in ``coords.py``;
one module per format, what they share in ``common.py``.

Layouts (what ``read`` detects and ``write`` produces):

* ``folder``  — ``ROOT/<tag>/<image>``; an image in several tag folders (same bytes) gets all those tags
  (multilabel); images directly in ROOT are untagged; a folder named ``Negative`` becomes the Negative tag.
* ``coco``    — ``ROOT/annotations.json`` (``images``, ``annotations`` with pixel ``bbox`` [x, y, w, h],
  ``categories``) and the images under ROOT (``file_name`` is relative to ROOT or ``ROOT/images``).
* ``voc``     — ``ROOT/Annotations/*.xml`` (``filename``, ``size``, ``object/name``, ``object/bndbox``
  xmin/ymin/xmax/ymax in pixels) and ``ROOT/JPEGImages/``.
* ``yolo``    — ``ROOT/images/**`` and ``ROOT/labels/**.txt`` (``class cx cy w h`` normalised, one box a
  line) with class names in ``ROOT/classes.txt`` (or ``obj.names`` / ``data.yaml`` ``names``).
* ``cvjson``  — ``ROOT/customvision.json``: ``{"project_type", "classification_type", "tags": [{"name",
  "type"}], "images": [{"filename", "tags": [{"tag", "left", "top", "width", "height"}]}]}``; a
  classification tag has only ``"tag"``. Coordinates are normalised, as Custom Vision stores them.

Annotation files are untrusted: a path that is absolute, climbs out with ``..`` or leaves ROOT through a
symlink is refused, and so is a zip member doing the same (zip-slip).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ...errors import CvlabError
from ..records import Record
from .coco import find_coco_file, read_coco, write_coco
from .common import (COCO_NAME, CVJSON_NAME, FORMATS, IMAGE_EXTENSIONS, MAX_ZIP_BYTES, FormatError, LabeledSet,
                     extract_zip, safe_join)
from .cvjson import read_cvjson, write_cvjson
from .folder import read_folder, write_folder
from .voc import read_voc, write_voc
from .yolo import read_yolo, write_yolo

__all__ = ["FORMATS", "FormatError", "LabeledSet", "detect_format", "read", "write", "extract_zip", "safe_join",
           "read_folder", "write_folder", "read_coco", "write_coco", "read_voc", "write_voc", "read_yolo",
           "write_yolo", "read_cvjson", "write_cvjson", "IMAGE_EXTENSIONS", "COCO_NAME", "CVJSON_NAME",
           "MAX_ZIP_BYTES"]

READERS = {"folder": read_folder, "coco": read_coco, "voc": read_voc, "yolo": read_yolo, "cvjson": read_cvjson}


def detect_format(root: Path) -> str:
    """Guess a folder's layout from the files it holds (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise FormatError(root, "not a folder (unzip it, or pass a .zip to import)")
    if (root / CVJSON_NAME).is_file():
        return "cvjson"
    if find_coco_file(root) is not None:
        return "coco"
    if (root / "Annotations").is_dir() or any(root.glob("*.xml")):
        return "voc"
    if (root / "labels").is_dir() or (root / "classes.txt").is_file() or (root / "obj.names").is_file():
        return "yolo"
    if any(p.is_dir() for p in root.iterdir()) or any(p.suffix.lower() in IMAGE_EXTENSIONS for p in root.iterdir()):
        return "folder"
    raise FormatError(root, f"found no images or annotation files; expected one of the layouts: {', '.join(FORMATS)}")


def read(root: Path, format: str | None = None) -> LabeledSet:
    """Read a labelled set from folder ``root`` in ``format`` (detected when None)."""
    root = Path(root)
    fmt = format or detect_format(root)
    if fmt not in READERS:
        raise CvlabError("BadRequest", f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not root.is_dir():
        raise FormatError(root, "not a folder")
    return READERS[fmt](root)


WRITERS = {"folder": write_folder, "coco": write_coco, "voc": write_voc, "yolo": write_yolo, "cvjson": write_cvjson}


def write(records: Iterable[Record], out: Path, format: str, **options) -> Path:
    """Write records in ``format``; options: ``tags`` (order/ids), ``project_type``, ``classification_type``,
    ``negative_tags`` (cvjson)."""
    if format not in WRITERS:
        raise CvlabError("BadRequest", f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    return WRITERS[format](records, Path(out), **options)

"""``folder``: ``ROOT/<tag>/<image>``. An image in several tag folders (same bytes) gets all those tags
(multilabel); images directly in ROOT are untagged; a folder named ``Negative`` becomes the Negative tag."""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Iterable

from ...errors import CvlabError
from ..records import NEGATIVE, Record
from .common import IMAGE_EXTENSIONS, FormatError, LabeledSet, image_file_name, images_under, labeled_set, save_image


def read_folder(root: Path) -> LabeledSet:
    """``ROOT/<tag>/<image>``; identical files in several tag folders become one multilabel image."""
    root = Path(root)
    by_hash: dict[str, Record] = {}
    order: list[str] = []
    tag_dirs = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: (p.name.lower() == NEGATIVE.lower(), p.name))  # Negative last
    entries = [(None, p) for p in sorted(root.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    for d in tag_dirs:
        entries += [(d.name, p) for p in images_under(d)]
    for tag, p in entries:
        if not p.resolve().is_relative_to(root.resolve()):
            raise FormatError(p, "image leaves the data folder through a symlink")
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        rec = by_hash.get(digest)
        if rec is None:
            rec = by_hash[digest] = Record(name=p.name, path=p)
            order.append(digest)
        if tag and tag not in rec.tags:
            rec.tags.append(tag)
    records = [by_hash[h] for h in order]
    negatives = {d.name for d in tag_dirs if d.name.lower() == NEGATIVE.lower()}
    return labeled_set("folder", records, "Classification", [d.name for d in tag_dirs], negatives)


def write_folder(records: Iterable[Record], out: Path, **_) -> Path:
    """One folder per tag; a multilabel image is copied into each of its tags' folders; untagged ones in ROOT."""
    out = Path(out)
    used: set[str] = set()
    for rec in records:
        if rec.regions:
            raise CvlabError("BadRequest", "folder-per-tag holds image tags only; "
                             "write object-detection sets as coco, voc, yolo or cvjson")
        name = image_file_name(rec, used)
        first = None
        for tag in rec.tags or [None]:
            target = out / _safe_dirname(tag) / name if tag else out / name
            if first is None:
                save_image(rec, target)
                first = target
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(first, target)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _safe_dirname(tag: str) -> str:
    cleaned = re.sub(r'[<>:"/\\|?*\x00-\x1f]', "_", tag).strip(". ")
    return cleaned or "_"

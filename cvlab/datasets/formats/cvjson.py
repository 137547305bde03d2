"""``cvjson``: ``ROOT/customvision.json``: ``{"project_type", "classification_type", "tags": [{"name", "type"}],
"images": [{"filename", "tags": [{"tag", "left", "top", "width", "height"}]}]}``; a classification tag has only
``"tag"``. Coordinates are normalised, as Custom Vision stores them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from ..records import Record, Region
from .common import (CVJSON_NAME, FormatError, LabeledSet, checked_box, labeled_set, parse_number, parse_tag_name,
                     read_json, safe_join, saved_images, tag_names)


def read_cvjson(root: Path) -> LabeledSet:
    root = Path(root)
    path = root / CVJSON_NAME
    doc = read_json(path)
    entries = doc.get("images") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise FormatError(path, "expected a list of images, or an object with an 'images' list", field="images")
    declared = []
    negatives = set()
    if isinstance(doc, dict):
        for i, t in enumerate(doc.get("tags") or []):
            name = parse_tag_name(t.get("name") if isinstance(t, dict) else t, path, fld=f"tags[{i}]")
            declared.append(name)
            if isinstance(t, dict) and t.get("type") == "Negative":
                negatives.add(name)
    records = []
    detection = False
    for i, e in enumerate(entries):
        fld = f"images[{i}]"
        if not isinstance(e, dict):
            raise FormatError(path, "expected an object with 'filename' and 'tags'", field=fld)
        p = safe_join(root, e.get("filename"), path, fld=f"{fld}.filename")
        if not p.is_file():
            raise FormatError(path, f"image file {e.get('filename')!r} not found", field=f"{fld}.filename")
        rec = Record(name=p.name, path=p)
        tags = e.get("tags", [])
        if not isinstance(tags, list):
            raise FormatError(path, "expected a list", field=f"{fld}.tags")
        for k, t in enumerate(tags):
            tf = f"{fld}.tags[{k}]"
            if isinstance(t, str):
                t = {"tag": t}
            if not isinstance(t, dict):
                raise FormatError(path, "expected {'tag': name} or {'tag', 'left', 'top', 'width', 'height'}", field=tf)
            name = parse_tag_name(t.get("tag"), path, fld=f"{tf}.tag")
            keys = ("left", "top", "width", "height")
            present = [key for key in keys if key in t]
            if present and len(present) != 4:
                missing = [key for key in keys if key not in t]
                raise FormatError(path, f"a region needs left, top, width and height; missing {missing}", field=tf)
            if present:
                box = tuple(parse_number(t[key], path, fld=f"{tf}.{key}") for key in keys)
                rec.regions.append(Region(name, *checked_box(box, path, fld=tf)))
                detection = True
            elif name not in rec.tags:
                rec.tags.append(name)
        records.append(rec)
    if detection and any(r.tags for r in records):
        raise FormatError(path, "mixes image tags and regions; a project is either classification or detection")
    ptype = (doc.get("project_type") if isinstance(doc, dict) else None) or (
        "ObjectDetection" if detection else "Classification")
    out = labeled_set("cvjson", records, ptype, declared, negatives)
    if isinstance(doc, dict) and doc.get("classification_type") in ("Multiclass", "Multilabel"):
        out.classification_type = doc["classification_type"]
    return out


def write_cvjson(records: Iterable[Record], out: Path, tags: list[str] | None = None,
                 project_type: str | None = None, classification_type: str | None = None,
                 negative_tags: Iterable[str] = (), **_) -> Path:
    """``out/customvision.json`` + ``out/images/``, coordinates normalised like Custom Vision's regions."""
    out = Path(out)
    if project_type is None or classification_type is None:
        records = list(records)
    records, names = tag_names(records, tags)
    negative_tags = set(negative_tags)
    if project_type is None:
        project_type = "ObjectDetection" if any(r.regions for r in records) else "Classification"
    if classification_type is None:
        classification_type = "Multilabel" if any(len(r.tags) > 1 for r in records) else "Multiclass"
    doc = {"format": "cvlab customvision.json v1", "project_type": project_type,
           "classification_type": classification_type,
           "tags": [{"name": n, "type": "Negative" if n in negative_tags else "Regular"} for n in names],
           "images": []}
    for rec, name in saved_images(records, out / "images"):
        entry_tags = [{"tag": t} for t in rec.tags]
        entry_tags += [{"tag": r.tag, "left": round(r.left, 6), "top": round(r.top, 6),
                        "width": round(r.width, 6), "height": round(r.height, 6)} for r in rec.regions]
        doc["images"].append({"filename": f"images/{name}", "tags": entry_tags})
    (out / CVJSON_NAME).write_text(json.dumps(doc, indent=1))
    return out

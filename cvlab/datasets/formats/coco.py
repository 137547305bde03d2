"""``coco``: ``ROOT/annotations.json`` (``images``, ``annotations`` with pixel ``bbox`` [x, y, w, h],
``categories``) and the images under ROOT (``file_name`` is relative to ROOT or ``ROOT/images``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from .. import coords
from ..records import Record, Region
from .common import (COCO_NAME, CVJSON_NAME, FormatError, LabeledSet, checked_box, labeled_set, parse_number,
                     parse_tag_name, read_json, safe_join, saved_images, tag_names)


def find_coco_file(root: Path) -> Path | None:
    """``annotations.json``, else the one ``*.json`` in ROOT that looks like COCO (e.g. Roboflow's
    ``_annotations.coco.json``, ``instances_train.json``)."""
    if (root / COCO_NAME).is_file():
        return root / COCO_NAME
    found = []
    for p in sorted(root.glob("*.json")):
        if p.name == CVJSON_NAME:
            continue
        with open(p, "rb") as f:
            head = f.read(8192)
        if b'"images"' in head:  # COCO files open with info/licenses/images; a cvjson list does not
            found.append(p)
    return found[0] if len(found) == 1 else None


def read_coco(root: Path, annotations: Path | None = None) -> LabeledSet:
    root = Path(root)
    path = Path(annotations) if annotations else (find_coco_file(root) or root / COCO_NAME)
    if not path.is_file():
        raise FormatError(path, "COCO annotations file not found (expected annotations.json, or a single "
                                "COCO *.json in the folder)")
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise FormatError(path, "expected a JSON object with 'images', 'annotations' and 'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise FormatError(path, f"missing list {key!r}", field=key)
    cats = {}
    for i, c in enumerate(doc["categories"]):
        if not isinstance(c, dict) or "id" not in c:
            raise FormatError(path, "each category needs an 'id' and a 'name'", field=f"categories[{i}]")
        cats[c["id"]] = parse_tag_name(c.get("name"), path, fld=f"categories[{i}].name")
    images: dict = {}
    records: list[Record] = []
    for i, im in enumerate(doc["images"]):
        fld = f"images[{i}]"
        if not isinstance(im, dict) or "id" not in im:
            raise FormatError(path, "each image needs 'id', 'file_name', 'width' and 'height'", field=fld)
        rel = im.get("file_name")
        p = safe_join(root, rel, path, fld=f"{fld}.file_name")
        if not p.is_file() and (root / "images").is_dir():
            p = safe_join(root / "images", rel, path, fld=f"{fld}.file_name")
        if not p.is_file():
            raise FormatError(path, f"image file {rel!r} not found next to the annotations or in images/",
                              field=f"{fld}.file_name")
        w = parse_number(im.get("width"), path, fld=f"{fld}.width")
        h = parse_number(im.get("height"), path, fld=f"{fld}.height")
        if w <= 0 or h <= 0:
            raise FormatError(path, f"width and height must be positive, got {w}x{h}", field=fld)
        if im["id"] in images:
            raise FormatError(path, f"duplicate image id {im['id']!r}", field=f"{fld}.id")
        rec = Record(name=Path(rel).name, path=p, width=int(w), height=int(h))
        images[im["id"]] = rec
        records.append(rec)
    for i, a in enumerate(doc["annotations"]):
        fld = f"annotations[{i}]"
        if not isinstance(a, dict):
            raise FormatError(path, "expected an object", field=fld)
        rec = images.get(a.get("image_id"))
        if rec is None:
            raise FormatError(path, f"image_id {a.get('image_id')!r} is not in 'images'", field=f"{fld}.image_id")
        if a.get("category_id") not in cats:
            raise FormatError(path, f"category_id {a.get('category_id')!r} is not in 'categories'",
                              field=f"{fld}.category_id")
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise FormatError(path, f"bbox must be [x, y, width, height] in pixels, got {bbox!r}", field=f"{fld}.bbox")
        px = tuple(parse_number(v, path, fld=f"{fld}.bbox") for v in bbox)
        box = checked_box(coords.coco_to_ltwh(px, rec.width, rec.height), path, fld=f"{fld}.bbox")
        rec.regions.append(Region(cats[a["category_id"]], *box))
    return labeled_set("coco", records, "ObjectDetection", [cats[k] for k in cats])


def write_coco(records: Iterable[Record], out: Path, tags: list[str] | None = None, **_) -> Path:
    """``out/annotations.json`` + ``out/images/``; category ids follow ``tags`` order starting at 1."""
    out = Path(out)
    records, names = tag_names(records, tags)
    cat_id = {n: i + 1 for i, n in enumerate(names)}
    doc = {"info": {"description": "exported by cvlab"}, "licenses": [],
           "categories": [{"id": cat_id[n], "name": n, "supercategory": "none"} for n in names],
           "images": [], "annotations": []}
    for i, (rec, name) in enumerate(saved_images(records, out / "images", "coco"), start=1):
        w, h = rec.size()
        doc["images"].append({"id": i, "file_name": f"images/{name}", "width": w, "height": h})
        for reg in rec.regions:
            x, y, bw, bh = (round(v, 3) for v in coords.ltwh_to_coco(reg.ltwh, w, h))
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": i,
                                       "category_id": cat_id[reg.tag], "bbox": [x, y, bw, bh],
                                       "area": round(bw * bh, 3), "iscrowd": 0})
    (out / COCO_NAME).write_text(json.dumps(doc, indent=1))
    return out

"""``voc``: ``ROOT/Annotations/*.xml`` (``filename``, ``size``, ``object/name``, ``object/bndbox``
xmin/ymin/xmax/ymax in pixels) and ``ROOT/JPEGImages/``."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable

from PIL import Image

from .. import coords
from ..records import Record, Region
from .common import (FormatError, LabeledSet, checked_box, labeled_set, parse_number, parse_tag_name, safe_join,
                     saved_images)


def _xml_text(node, tag, path, fld):
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise FormatError(path, f"missing <{tag}>", field=f"{fld}/{tag}")
    return child.text.strip()


def read_voc(root: Path) -> LabeledSet:
    root = Path(root)
    ann_dir = root / "Annotations" if (root / "Annotations").is_dir() else root
    records = []
    for path in sorted(ann_dir.glob("*.xml")):
        try:
            tree = ET.parse(path)
        except ET.ParseError as e:
            raise FormatError(path, f"invalid XML: {e}", line=e.position[0]) from None
        ann = tree.getroot()
        rel = _xml_text(ann, "filename", path, "annotation")
        candidates = [root / "JPEGImages", ann_dir, root]
        p = None
        for base in candidates:
            q = safe_join(base, rel, path, fld="annotation/filename")
            if q.is_file() and q.resolve().is_relative_to(root.resolve()):
                p = q
                break
        if p is None:
            raise FormatError(path, f"image {rel!r} not found in JPEGImages/ or next to the XML",
                              field="annotation/filename")
        size = ann.find("size")
        if size is not None:
            w = parse_number(_xml_text(size, "width", path, "annotation/size"), path, fld="annotation/size/width")
            h = parse_number(_xml_text(size, "height", path, "annotation/size"), path, fld="annotation/size/height")
        else:
            with Image.open(p) as im:
                w, h = im.size
        if w <= 0 or h <= 0:
            raise FormatError(path, f"size must be positive, got {w}x{h}", field="annotation/size")
        rec = Record(name=Path(rel).name, path=p, width=int(w), height=int(h))
        for k, obj in enumerate(ann.findall("object"), start=1):
            fld = f"annotation/object[{k}]"
            tag = parse_tag_name(_xml_text(obj, "name", path, fld), path, fld=f"{fld}/name")
            bb = obj.find("bndbox")
            if bb is None:
                raise FormatError(path, "missing <bndbox>", field=f"{fld}/bndbox")
            xyxy = tuple(parse_number(_xml_text(bb, t, path, f"{fld}/bndbox"), path, fld=f"{fld}/bndbox/{t}")
                         for t in ("xmin", "ymin", "xmax", "ymax"))
            box = checked_box(coords.voc_to_ltwh(xyxy, w, h), path, fld=f"{fld}/bndbox")
            rec.regions.append(Region(tag, *box))
        records.append(rec)
    if not records:
        raise FormatError(ann_dir, "no .xml annotation files found")
    return labeled_set("voc", records, "ObjectDetection")


def write_voc(records: Iterable[Record], out: Path, **_) -> Path:
    """``out/Annotations/<stem>.xml`` + ``out/JPEGImages/``; pixel corners rounded to whole pixels."""
    out = Path(out)
    (out / "Annotations").mkdir(parents=True, exist_ok=True)
    for rec, name in saved_images(records, out / "JPEGImages", "voc"):
        w, h = rec.size()
        ann = ET.Element("annotation")
        ET.SubElement(ann, "folder").text = "JPEGImages"
        ET.SubElement(ann, "filename").text = name
        size = ET.SubElement(ann, "size")
        for k, v in (("width", w), ("height", h), ("depth", 3)):
            ET.SubElement(size, k).text = str(v)
        for reg in rec.regions:
            obj = ET.SubElement(ann, "object")
            ET.SubElement(obj, "name").text = reg.tag
            ET.SubElement(obj, "difficult").text = "0"
            bb = ET.SubElement(obj, "bndbox")
            x1, y1, x2, y2 = (int(round(v)) for v in coords.ltwh_to_voc(reg.ltwh, w, h))
            # whole pixels, but never an empty box: a box always spans at least one pixel inside the image
            x1, y1 = min(x1, w - 1), min(y1, h - 1)
            x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
            for k, v in zip(("xmin", "ymin", "xmax", "ymax"), (x1, y1, x2, y2)):
                ET.SubElement(bb, k).text = str(v)
        ET.indent(ann)
        ET.ElementTree(ann).write(out / "Annotations" / (Path(name).stem + ".xml"), encoding="unicode")
    return out

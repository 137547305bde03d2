"""``yolo``: ``ROOT/images/**`` and ``ROOT/labels/**.txt`` (``class cx cy w h`` normalised, one box a line) with
class names in ``ROOT/classes.txt`` (or ``obj.names`` / ``data.yaml`` ``names``)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import yaml

from .. import coords
from ..records import Record, Region
from .common import (FormatError, LabeledSet, checked_box, images_under, labeled_set, parse_number, saved_images,
                     tag_names, text_lines)


def _yolo_names(root: Path) -> list[str]:
    for fname in ("classes.txt", "obj.names"):
        p = root / fname
        if p.is_file():
            return [ln.strip() for ln in text_lines(p) if ln.strip()]
    for fname in ("data.yaml", "dataset.yaml"):
        p = root / fname
        if p.is_file():
            try:
                doc = yaml.safe_load(p.read_text(encoding="utf-8"))
            except yaml.YAMLError as e:
                mark = getattr(e, "problem_mark", None)
                raise FormatError(p, f"invalid YAML: {e}", line=mark.line + 1 if mark else None) from None
            names = doc.get("names") if isinstance(doc, dict) else None
            if isinstance(names, dict):
                return [str(names[k]) for k in sorted(names)]
            if isinstance(names, list):
                return [str(n) for n in names]
            raise FormatError(p, "expected 'names' as a list or an {index: name} mapping", field="names")
    raise FormatError(root, "no class names: add classes.txt (one name a line) or data.yaml with 'names'")


def read_yolo(root: Path) -> LabeledSet:
    root = Path(root)
    names = _yolo_names(root)
    img_root = root / "images" if (root / "images").is_dir() else root
    lbl_root = root / "labels" if (root / "labels").is_dir() else img_root
    records = []
    for p in images_under(img_root):
        rel = p.relative_to(img_root)
        label = lbl_root / rel.with_suffix(".txt")
        rec = Record(name=p.name, path=p)
        if label.is_file():
            for n, line in enumerate(text_lines(label), start=1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 5:
                    raise FormatError(label, f"expected 'class cx cy w h' (5 values), got {len(parts)}", line=n)
                try:
                    cls = int(parts[0])
                except ValueError:
                    raise FormatError(label, f"class must be an integer index, got {parts[0]!r}", line=n) from None
                if not 0 <= cls < len(names):
                    raise FormatError(label, f"class {cls} is not in the {len(names)} class names", line=n)
                vals = tuple(parse_number(v, label, line=n) for v in parts[1:])
                box = checked_box(coords.yolo_to_ltwh(vals), label, line=n)
                rec.regions.append(Region(names[cls], *box))
        records.append(rec)
    if not records:
        raise FormatError(img_root, "no images found")
    return labeled_set("yolo", records, "ObjectDetection", names)


def write_yolo(records: Iterable[Record], out: Path, tags: list[str] | None = None, **_) -> Path:
    """``out/images/``, ``out/labels/*.txt``, ``out/classes.txt`` and an Ultralytics-style ``data.yaml``."""
    out = Path(out)
    records, names = tag_names(records, tags)
    broken = [n for n in names if any(c in n for c in "\r\n")]
    if broken:  # a line end inside a name would shift every later class index (cvlab's names cannot hold one)
        raise FormatError(out / "classes.txt", f"tag name {broken[0]!r} holds a line break; rename the tag first")
    index = {n: i for i, n in enumerate(names)}
    (out / "labels").mkdir(parents=True, exist_ok=True)
    for rec, name in saved_images(records, out / "images", "yolo"):
        lines = [f"{index[r.tag]} " + " ".join(f"{v:.6f}" for v in coords.ltwh_to_yolo(r.ltwh)) for r in rec.regions]
        label = out / "labels" / (Path(name).stem + ".txt")
        label.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
    (out / "classes.txt").write_text("".join(n + "\n" for n in names), encoding="utf-8")
    (out / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images", "val": "images",
                                                   "names": dict(enumerate(names))}, sort_keys=False),
                                   encoding="utf-8")
    return out

"""Read and write labelled image sets: folder-per-tag, COCO JSON, Pascal VOC XML, YOLO txt, Custom Vision JSON.

Every reader returns a :class:`LabeledSet` of :class:`~cvlab.datasets.records.Record` (with ``path`` set) and
every writer takes records, so any format converts to any other. Box conversions live in ``coords.py``.

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

import hashlib
import json
import math
import os
import re
import shutil
import xml.etree.ElementTree as ET
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterable

import yaml
from PIL import Image

from ..errors import CvlabError
from . import coords
from .records import NEGATIVE, Record, Region

FORMATS = ("folder", "coco", "voc", "yolo", "cvjson")
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
CVJSON_NAME = "customvision.json"
COCO_NAME = "annotations.json"
MAX_ZIP_BYTES = 4 * 1024**3


class FormatError(CvlabError, ValueError):
    """A malformed or unsafe annotation: names the file and, where known, the line or field to fix."""

    def __init__(self, path, message: str, *, line: int | None = None, field: str | None = None,
                 code: str = "BadRequest"):
        where = str(path) + (f":{line}" if line else "") + (f" [{field}]" if field else "")
        super().__init__(code, f"{where}: {message}")
        self.path, self.line, self.field = Path(path), line, field


@dataclass
class LabeledSet:
    """What a reader found: records plus the project shape they imply."""

    format: str
    records: list[Record]
    project_type: str = "Classification"
    classification_type: str = "Multiclass"
    tags: list[str] = field(default_factory=list)
    negative_tags: set[str] = field(default_factory=set)


# ------------------------------------------------------------------------------------------------- safety
def safe_join(root: Path, rel: str, source: Path | str, *, line: int | None = None, fld: str | None = None) -> Path:
    """``root / rel`` if it stays inside ``root``; otherwise a FormatError naming ``source`` (the file holding rel)."""
    if not isinstance(rel, str) or not rel.strip():
        raise FormatError(source, "expected a relative file name", line=line, field=fld)
    if "\x00" in rel:
        raise FormatError(source, "file name contains a NUL byte", line=line, field=fld)
    pure = PurePosixPath(rel.replace("\\", "/"))
    if pure.is_absolute() or PureWindowsPath(rel).drive or PureWindowsPath(rel).is_absolute():
        raise FormatError(source, f"absolute path {rel!r} is not allowed; use a path relative to {root}",
                          line=line, field=fld)
    if ".." in pure.parts:
        raise FormatError(source, f"path {rel!r} climbs out of the data folder with '..'", line=line, field=fld)
    root_resolved = Path(root).resolve()
    target = (root_resolved / pure).resolve()
    if not target.is_relative_to(root_resolved):
        raise FormatError(source, f"path {rel!r} leaves the data folder (through a symlink?)", line=line, field=fld)
    return target


def extract_zip(archive: Path, dest: Path) -> Path:
    """Extract a zip into ``dest``, refusing members that would land outside it (zip-slip) or symlinks."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as e:
        raise FormatError(archive, f"not a valid zip file ({e})") from None
    with zf:
        members = zf.infolist()
        if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
            raise FormatError(archive, f"unpacks to more than {MAX_ZIP_BYTES >> 30} GB; unzip it yourself")
        for m in members:
            if (m.external_attr >> 16) & 0o170000 == 0o120000:
                raise FormatError(archive, f"member {m.filename!r} is a symlink; symlinks are not allowed")
            target = safe_join(dest, m.filename, archive, fld=m.filename)
            if m.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _extract_member(zf, m, target, archive)
    return dest


def _extract_member(zf: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path, archive: Path) -> None:
    """Copy one member, never more than the size it declares (the total above was checked against those sizes);
    a member that inflates past it, or whose data is damaged, is a FormatError naming it, not a raw BadZipFile."""
    written = 0
    try:
        with zf.open(member) as src, open(target, "wb") as out:
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > member.file_size:
                    raise FormatError(archive, f"member {member.filename!r} unpacks to more than the "
                                      f"{member.file_size} bytes it declares: the archive is damaged or hostile",
                                      field=member.filename)
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
        target.unlink(missing_ok=True)
        raise FormatError(archive, f"member {member.filename!r} cannot be unpacked ({e}): the archive is damaged "
                          "or uses an unsupported compression; re-create the zip", field=member.filename) from None
    except FormatError:
        target.unlink(missing_ok=True)
        raise


def _images_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _check_box(box, source, *, line=None, fld=None) -> tuple[float, float, float, float]:
    why = coords.validate_ltwh(box)
    if why:
        raise FormatError(source, why, line=line, field=fld, code="BadRequestImageRegions")
    return coords.clip_ltwh(box)


def _number(value, source, *, line=None, fld=None) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise FormatError(source, f"expected a number, got {value!r}", line=line, field=fld) from None
    if not math.isfinite(x):
        raise FormatError(source, f"expected a finite number, got {value!r}", line=line, field=fld)
    return x


def _tag_name(value, source, *, line=None, fld=None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FormatError(source, f"expected a tag name, got {value!r}", line=line, field=fld)
    return value.strip()


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise FormatError(path, f"invalid JSON: {e.msg}", line=e.lineno) from None
    except UnicodeDecodeError as e:
        raise FormatError(path, f"not UTF-8 text ({e.reason})") from None


def _ordered_tags(records: Iterable[Record], declared: Iterable[str] = ()) -> list[str]:
    tags = dict.fromkeys(declared)
    for r in records:
        tags.update(dict.fromkeys(r.all_tags))
    return list(tags)


def _finish(fmt: str, records: list[Record], project_type: str, declared=(), negatives=()) -> LabeledSet:
    multilabel = any(len(r.tags) > 1 for r in records)
    return LabeledSet(fmt, records, project_type, "Multilabel" if multilabel else "Multiclass",
                      _ordered_tags(records, declared), set(negatives))


# --------------------------------------------------------------------------------------------- detection
def detect_format(root: Path) -> str:
    """Guess a folder's layout from the files it holds (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise FormatError(root, "not a folder (unzip it, or pass a .zip to import)")
    if (root / CVJSON_NAME).is_file():
        return "cvjson"
    if _coco_file(root) is not None:
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
    readers = {"folder": read_folder, "coco": read_coco, "voc": read_voc, "yolo": read_yolo, "cvjson": read_cvjson}
    if fmt not in readers:
        raise CvlabError("BadRequest", f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not root.is_dir():
        raise FormatError(root, "not a folder")
    return readers[fmt](root)


# ------------------------------------------------------------------------------------------------- folder
def read_folder(root: Path) -> LabeledSet:
    """``ROOT/<tag>/<image>``; identical files in several tag folders become one multilabel image."""
    root = Path(root)
    by_hash: dict[str, Record] = {}
    order: list[str] = []
    tag_dirs = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: (p.name.lower() == NEGATIVE.lower(), p.name))  # Negative last
    entries = [(None, p) for p in sorted(root.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    for d in tag_dirs:
        entries += [(d.name, p) for p in _images_under(d)]
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
    return _finish("folder", records, "Classification", [d.name for d in tag_dirs], negatives)


def _unique_name(name: str, used: set[str]) -> str:
    stem, suffix = os.path.splitext(Path(name.replace("\\", "/")).name or "image.jpg")
    stem = re.sub(r"[^\w.\- ]", "_", stem) or "image"
    candidate, k = stem + suffix, 1
    while candidate.lower() in used:
        candidate, k = f"{stem}-{k}{suffix}", k + 1
    used.add(candidate.lower())
    return candidate


def _save_image(rec: Record, target: Path, quality: int = 92) -> None:
    """Copy the original bytes when the record has a file in a matching format; otherwise encode."""
    target.parent.mkdir(parents=True, exist_ok=True)
    same = {".jpeg": ".jpg"}
    source_suffix = Path(rec.path).suffix or Path(rec.name).suffix if rec.path is not None else ""
    if rec.path is not None and same.get(source_suffix.lower(), source_suffix.lower()) == same.get(
            target.suffix.lower(), target.suffix.lower()):
        shutil.copyfile(rec.path, target)
        return
    im = rec.load()
    if target.suffix.lower() in (".jpg", ".jpeg"):
        im.convert("RGB").save(target, "JPEG", quality=quality)
    else:
        im.save(target)


def _file_name(rec: Record, used: set[str]) -> str:
    name = rec.name if Path(rec.name).suffix.lower() in IMAGE_EXTENSIONS else rec.name + ".jpg"
    return _unique_name(name, used)


def write_folder(records: Iterable[Record], out: Path, **_) -> Path:
    """One folder per tag; a multilabel image is copied into each of its tags' folders; untagged ones in ROOT."""
    out = Path(out)
    used: set[str] = set()
    for rec in records:
        if rec.regions:
            raise CvlabError("BadRequest", "folder-per-tag holds image tags only; "
                             "write object-detection sets as coco, voc, yolo or cvjson")
        name = _file_name(rec, used)
        first = None
        for tag in rec.tags or [None]:
            target = out / _safe_dirname(tag) / name if tag else out / name
            if first is None:
                _save_image(rec, target)
                first = target
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(first, target)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _safe_dirname(tag: str) -> str:
    cleaned = re.sub(r'[<>:"/\\|?*\x00-\x1f]', "_", tag).strip(". ")
    return cleaned or "_"


# --------------------------------------------------------------------------------------------------- COCO
def _coco_file(root: Path) -> Path | None:
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
    path = Path(annotations) if annotations else (_coco_file(root) or root / COCO_NAME)
    if not path.is_file():
        raise FormatError(path, "COCO annotations file not found (expected annotations.json, or a single "
                                "COCO *.json in the folder)")
    doc = _json(path)
    if not isinstance(doc, dict):
        raise FormatError(path, "expected a JSON object with 'images', 'annotations' and 'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise FormatError(path, f"missing list {key!r}", field=key)
    cats = {}
    for i, c in enumerate(doc["categories"]):
        if not isinstance(c, dict) or "id" not in c:
            raise FormatError(path, "each category needs an 'id' and a 'name'", field=f"categories[{i}]")
        cats[c["id"]] = _tag_name(c.get("name"), path, fld=f"categories[{i}].name")
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
        w = _number(im.get("width"), path, fld=f"{fld}.width")
        h = _number(im.get("height"), path, fld=f"{fld}.height")
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
        px = tuple(_number(v, path, fld=f"{fld}.bbox") for v in bbox)
        box = _check_box(coords.coco_to_ltwh(px, rec.width, rec.height), path, fld=f"{fld}.bbox")
        rec.regions.append(Region(cats[a["category_id"]], *box))
    return _finish("coco", records, "ObjectDetection", [cats[k] for k in cats])


def write_coco(records: Iterable[Record], out: Path, tags: list[str] | None = None, **_) -> Path:
    """``out/annotations.json`` + ``out/images/``; category ids follow ``tags`` order starting at 1."""
    out = Path(out)
    records, names = _names(records, tags)
    cat_id = {n: i + 1 for i, n in enumerate(names)}
    doc = {"info": {"description": "exported by cvlab"}, "licenses": [],
           "categories": [{"id": cat_id[n], "name": n, "supercategory": "none"} for n in names],
           "images": [], "annotations": []}
    used: set[str] = set()
    for i, rec in enumerate(records, start=1):
        _require_regions(rec, "coco")
        name = _file_name(rec, used)
        _save_image(rec, out / "images" / name)
        w, h = rec.size()
        doc["images"].append({"id": i, "file_name": f"images/{name}", "width": w, "height": h})
        for reg in rec.regions:
            x, y, bw, bh = (round(v, 3) for v in coords.ltwh_to_coco(reg.ltwh, w, h))
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": i,
                                       "category_id": cat_id[reg.tag], "bbox": [x, y, bw, bh],
                                       "area": round(bw * bh, 3), "iscrowd": 0})
    (out / COCO_NAME).write_text(json.dumps(doc, indent=1))
    return out


def _names(records: Iterable[Record], tags) -> tuple[Iterable[Record], list[str]]:
    """Tag names in id order: as given (records then stream, one image in memory at a time), else collected."""
    if tags:
        return records, list(tags)
    records = list(records)
    return records, _ordered_tags(records)


def _require_regions(rec: Record, fmt: str) -> None:
    if rec.tags and not rec.regions:
        raise CvlabError("BadRequest", f"{fmt} holds bounding boxes; this set has image-level tags "
                         "(classification): write it as folder or cvjson")


# --------------------------------------------------------------------------------------------- Pascal VOC
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
            w = _number(_xml_text(size, "width", path, "annotation/size"), path, fld="annotation/size/width")
            h = _number(_xml_text(size, "height", path, "annotation/size"), path, fld="annotation/size/height")
        else:
            with Image.open(p) as im:
                w, h = im.size
        if w <= 0 or h <= 0:
            raise FormatError(path, f"size must be positive, got {w}x{h}", field="annotation/size")
        rec = Record(name=Path(rel).name, path=p, width=int(w), height=int(h))
        for k, obj in enumerate(ann.findall("object"), start=1):
            fld = f"annotation/object[{k}]"
            tag = _tag_name(_xml_text(obj, "name", path, fld), path, fld=f"{fld}/name")
            bb = obj.find("bndbox")
            if bb is None:
                raise FormatError(path, "missing <bndbox>", field=f"{fld}/bndbox")
            xyxy = tuple(_number(_xml_text(bb, t, path, f"{fld}/bndbox"), path, fld=f"{fld}/bndbox/{t}")
                         for t in ("xmin", "ymin", "xmax", "ymax"))
            box = _check_box(coords.voc_to_ltwh(xyxy, w, h), path, fld=f"{fld}/bndbox")
            rec.regions.append(Region(tag, *box))
        records.append(rec)
    if not records:
        raise FormatError(ann_dir, "no .xml annotation files found")
    return _finish("voc", records, "ObjectDetection")


def write_voc(records: Iterable[Record], out: Path, **_) -> Path:
    """``out/Annotations/<stem>.xml`` + ``out/JPEGImages/``; pixel corners rounded to whole pixels."""
    out = Path(out)
    (out / "Annotations").mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for rec in records:
        _require_regions(rec, "voc")
        name = _file_name(rec, used)
        _save_image(rec, out / "JPEGImages" / name)
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


# --------------------------------------------------------------------------------------------------- YOLO
def _lines(path: Path) -> list[str]:
    """A text file's lines split on line ends only ("\\n", "\\r\\n", "\\r"), never with ``str.splitlines()``,
    which also splits on U+0085, U+2028 and other separators a name may hold, shifting every later line."""
    try:
        return path.read_text(encoding="utf-8").split("\n")  # read_text already turned \r\n and \r into \n
    except UnicodeDecodeError as e:
        raise FormatError(path, f"not UTF-8 text ({e.reason})") from None


def _yolo_names(root: Path) -> list[str]:
    for fname in ("classes.txt", "obj.names"):
        p = root / fname
        if p.is_file():
            return [ln.strip() for ln in _lines(p) if ln.strip()]
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
    for p in _images_under(img_root):
        rel = p.relative_to(img_root)
        label = lbl_root / rel.with_suffix(".txt")
        rec = Record(name=p.name, path=p)
        if label.is_file():
            for n, line in enumerate(_lines(label), start=1):
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
                vals = tuple(_number(v, label, line=n) for v in parts[1:])
                box = _check_box(coords.yolo_to_ltwh(vals), label, line=n)
                rec.regions.append(Region(names[cls], *box))
        records.append(rec)
    if not records:
        raise FormatError(img_root, "no images found")
    return _finish("yolo", records, "ObjectDetection", names)


def write_yolo(records: Iterable[Record], out: Path, tags: list[str] | None = None, **_) -> Path:
    """``out/images/``, ``out/labels/*.txt``, ``out/classes.txt`` and an Ultralytics-style ``data.yaml``."""
    out = Path(out)
    records, names = _names(records, tags)
    broken = [n for n in names if any(c in n for c in "\r\n")]
    if broken:  # a line end inside a name would shift every later class index (cvlab's names cannot hold one)
        raise FormatError(out / "classes.txt", f"tag name {broken[0]!r} holds a line break; rename the tag first")
    index = {n: i for i, n in enumerate(names)}
    (out / "labels").mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for rec in records:
        _require_regions(rec, "yolo")
        name = _file_name(rec, used)
        _save_image(rec, out / "images" / name)
        lines = [f"{index[r.tag]} " + " ".join(f"{v:.6f}" for v in coords.ltwh_to_yolo(r.ltwh)) for r in rec.regions]
        label = out / "labels" / (Path(name).stem + ".txt")
        label.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
    (out / "classes.txt").write_text("".join(n + "\n" for n in names), encoding="utf-8")
    (out / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images", "val": "images",
                                                   "names": dict(enumerate(names))}, sort_keys=False),
                                   encoding="utf-8")
    return out


# ------------------------------------------------------------------------------------- Custom Vision JSON
def read_cvjson(root: Path) -> LabeledSet:
    root = Path(root)
    path = root / CVJSON_NAME
    doc = _json(path)
    entries = doc.get("images") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise FormatError(path, "expected a list of images, or an object with an 'images' list", field="images")
    declared = []
    negatives = set()
    if isinstance(doc, dict):
        for i, t in enumerate(doc.get("tags") or []):
            name = _tag_name(t.get("name") if isinstance(t, dict) else t, path, fld=f"tags[{i}]")
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
            name = _tag_name(t.get("tag"), path, fld=f"{tf}.tag")
            keys = ("left", "top", "width", "height")
            present = [key for key in keys if key in t]
            if present and len(present) != 4:
                missing = [key for key in keys if key not in t]
                raise FormatError(path, f"a region needs left, top, width and height; missing {missing}", field=tf)
            if present:
                box = tuple(_number(t[key], path, fld=f"{tf}.{key}") for key in keys)
                rec.regions.append(Region(name, *_check_box(box, path, fld=tf)))
                detection = True
            elif name not in rec.tags:
                rec.tags.append(name)
        records.append(rec)
    if detection and any(r.tags for r in records):
        raise FormatError(path, "mixes image tags and regions; a project is either classification or detection")
    ptype = (doc.get("project_type") if isinstance(doc, dict) else None) or (
        "ObjectDetection" if detection else "Classification")
    out = _finish("cvjson", records, ptype, declared, negatives)
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
    records, names = _names(records, tags)
    negative_tags = set(negative_tags)
    if project_type is None:
        project_type = "ObjectDetection" if any(r.regions for r in records) else "Classification"
    if classification_type is None:
        classification_type = "Multilabel" if any(len(r.tags) > 1 for r in records) else "Multiclass"
    doc = {"format": "cvlab customvision.json v1", "project_type": project_type,
           "classification_type": classification_type,
           "tags": [{"name": n, "type": "Negative" if n in negative_tags else "Regular"} for n in names],
           "images": []}
    used: set[str] = set()
    for rec in records:
        name = _file_name(rec, used)
        _save_image(rec, out / "images" / name)
        entry_tags = [{"tag": t} for t in rec.tags]
        entry_tags += [{"tag": r.tag, "left": round(r.left, 6), "top": round(r.top, 6),
                        "width": round(r.width, 6), "height": round(r.height, 6)} for r in rec.regions]
        doc["images"].append({"filename": f"images/{name}", "tags": entry_tags})
    (out / CVJSON_NAME).write_text(json.dumps(doc, indent=1))
    return out


WRITERS = {"folder": write_folder, "coco": write_coco, "voc": write_voc, "yolo": write_yolo, "cvjson": write_cvjson}


def write(records: Iterable[Record], out: Path, format: str, **options) -> Path:
    """Write records in ``format``; options: ``tags`` (order/ids), ``project_type``, ``classification_type``,
    ``negative_tags`` (cvjson)."""
    if format not in WRITERS:
        raise CvlabError("BadRequest", f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    return WRITERS[format](records, Path(out), **options)

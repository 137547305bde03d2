"""What every format shares: the error, the result type, path and zip safety, field parsing, and the writers'
file naming. Annotation files are untrusted: a path that is absolute, climbs out with ``..`` or leaves ROOT
through a symlink is refused, and so is a zip member doing the same (zip-slip)."""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterable, Iterator

from ...errors import CvlabError
from .. import coords
from ..records import Record

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


# ------------------------------------------------------------------------------------------------- reading
def images_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def checked_box(box, source, *, line=None, fld=None) -> tuple[float, float, float, float]:
    why = coords.validate_ltwh(box)
    if why:
        raise FormatError(source, why, line=line, field=fld, code="BadRequestImageRegions")
    return coords.clip_ltwh(box)


def parse_number(value, source, *, line=None, fld=None) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise FormatError(source, f"expected a number, got {value!r}", line=line, field=fld) from None
    if not math.isfinite(x):
        raise FormatError(source, f"expected a finite number, got {value!r}", line=line, field=fld)
    return x


def parse_tag_name(value, source, *, line=None, fld=None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FormatError(source, f"expected a tag name, got {value!r}", line=line, field=fld)
    return value.strip()


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise FormatError(path, f"invalid JSON: {e.msg}", line=e.lineno) from None
    except UnicodeDecodeError as e:
        raise FormatError(path, f"not UTF-8 text ({e.reason})") from None


def tag_order(records: Iterable[Record], declared: Iterable[str] = ()) -> list[str]:
    tags = dict.fromkeys(declared)
    for r in records:
        tags.update(dict.fromkeys(r.all_tags))
    return list(tags)


def labeled_set(fmt: str, records: list[Record], project_type: str, declared=(), negatives=()) -> LabeledSet:
    multilabel = any(len(r.tags) > 1 for r in records)
    return LabeledSet(fmt, records, project_type, "Multilabel" if multilabel else "Multiclass",
                      tag_order(records, declared), set(negatives))


def text_lines(path: Path) -> list[str]:
    """A text file's lines split on line ends only ("\\n", "\\r\\n", "\\r"), never with ``str.splitlines()``,
    which also splits on U+0085, U+2028 and other separators a name may hold, shifting every later line."""
    try:
        return path.read_text(encoding="utf-8").split("\n")  # read_text already turned \r\n and \r into \n
    except UnicodeDecodeError as e:
        raise FormatError(path, f"not UTF-8 text ({e.reason})") from None


# ------------------------------------------------------------------------------------------------- writing
def unique_name(name: str, used: set[str]) -> str:
    stem, suffix = os.path.splitext(Path(name.replace("\\", "/")).name or "image.jpg")
    stem = re.sub(r"[^\w.\- ]", "_", stem) or "image"
    candidate, k = stem + suffix, 1
    while candidate.lower() in used:
        candidate, k = f"{stem}-{k}{suffix}", k + 1
    used.add(candidate.lower())
    return candidate


def save_image(rec: Record, target: Path, quality: int = 92) -> None:
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


def image_file_name(rec: Record, used: set[str]) -> str:
    name = rec.name if Path(rec.name).suffix.lower() in IMAGE_EXTENSIONS else rec.name + ".jpg"
    return unique_name(name, used)


def tag_names(records: Iterable[Record], tags) -> tuple[Iterable[Record], list[str]]:
    """Tag names in id order: as given (records then stream, one image in memory at a time), else collected."""
    if tags:
        return records, list(tags)
    records = list(records)
    return records, tag_order(records)


def require_regions(rec: Record, fmt: str) -> None:
    if rec.tags and not rec.regions:
        raise CvlabError("BadRequest", f"{fmt} holds bounding boxes; this set has image-level tags "
                         "(classification): write it as folder or cvjson")


def saved_images(records: Iterable[Record], folder: Path,
                 box_format: str | None = None) -> Iterator[tuple[Record, str]]:
    """Each record with the unique file name its image was just saved under in ``folder`` (one image in memory at
    a time); a box format (``box_format``) refuses image-level tags first."""
    used: set[str] = set()
    for rec in records:
        if box_format:
            require_regions(rec, box_format)
        name = image_file_name(rec, used)
        save_image(rec, folder / name)
        yield rec, name

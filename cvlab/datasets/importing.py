"""Move labelled sets into and out of a Workspace, through its public API only (tags, batches of <= 64).

Importing only adds: an image already in the project (same bytes) is reported as a duplicate and keeps its
labels; nothing stored is changed or removed.
"""
from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from tqdm.auto import tqdm

from .. import domains, rules
from ..errors import CvlabError
from ..workspace import ImageEntry
from . import coords, formats
from .records import NEGATIVE, Record, Region

#: Domains for projects that an import creates: compact, so the learner can export what they train.
DEFAULT_DOMAIN = {"Classification": "General (compact)", "ObjectDetection": "General (compact) [S1]"}

@dataclass
class ImportReport:
    """What an import did: counts by outcome, the tags it created, and each failed image with the reason."""

    project_id: str
    project_name: str
    created: int = 0
    duplicates: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (image name, status, message)
    tags_created: list[str] = field(default_factory=list)
    project_created: bool = False

    def __str__(self) -> str:
        s = (f"{self.project_name}: {self.created} images added, {self.duplicates} already there, "
             f"{len(self.failed)} failed")
        if self.tags_created:
            s += f"; new tags: {', '.join(self.tags_created)}"
        for name, status, msg in self.failed[:10]:
            s += f"\n  {name}: {status} {msg}"
        if len(self.failed) > 10:
            s += f"\n  ... and {len(self.failed) - 10} more"
        return s


def _encode(rec: Record) -> bytes:
    if rec.path is not None and rec.image is None:
        return Path(rec.path).read_bytes()
    buf = io.BytesIO()
    rec.load().convert("RGB").save(buf, "JPEG", quality=92)
    return buf.getvalue()


def ensure_tags(ws, project_id: str, names: Iterable[str], negative: Iterable[str] = ()) -> tuple[dict, list]:
    """Tag ids by name, creating missing tags (Negative type for names in ``negative``)."""
    negative = set(negative)
    existing = {t.name: t.id for t in ws.get_tags(project_id)}
    created = []
    for name in names:
        if name not in existing:
            kind = "Negative" if name in negative else "Regular"
            existing[name] = ws.create_tag(project_id, name, type=kind).id
            created.append(name)
    return existing, created


def import_records(ws, project_id: str, records: Iterable[Record], *, negative_tags: Iterable[str] = (),
                   batch_size: int | None = None, progress: bool = False) -> ImportReport:
    """Add records (tags or regions by tag name) to a project in batches of <= 64 via ``ws.create_images``."""
    project = ws.get_project(project_id)
    cap = rules.limit("images_per_batch")
    batch_size = min(batch_size or cap, cap)
    negative = set(negative_tags)
    if project.project_type == "Classification":
        negative |= {NEGATIVE}
    report = ImportReport(project.id, project.name)
    tag_ids: dict[str, str] = {t.name: t.id for t in ws.get_tags(project.id)}
    batch: list[tuple[Record, ImageEntry]] = []

    def flush():
        if not batch:
            return
        summary = ws.create_images(project.id, [e for _, e in batch])
        for (rec, _), res in zip(batch, summary.images):
            if res.status == "OK":
                report.created += 1
            elif res.status == "OKDuplicate":
                report.duplicates += 1
            else:
                report.failed.append((rec.name, res.status, getattr(res, "message", "") or ""))
        batch.clear()

    for rec in tqdm(records, desc=f"import into {project.name}", unit="img", disable=not progress):
        if project.project_type == "ObjectDetection" and rec.tags:
            report.failed.append((rec.name, "ErrorInvalidTag", "an object detection project needs boxes, not "
                                  f"image tags ({', '.join(rec.tags)}); import it into a classification project"))
            continue
        if project.project_type == "Classification" and rec.regions:
            report.failed.append((rec.name, "ErrorInvalidTag", "a classification project takes image tags, not "
                                  "boxes; import it into an object detection project"))
            continue
        missing = [t for t in rec.all_tags if t not in tag_ids]
        if missing:
            ids, created = ensure_tags(ws, project.id, missing, negative)
            tag_ids.update(ids)
            report.tags_created += created
        try:
            data = _encode(rec)
        except OSError as e:
            report.failed.append((rec.name, "ErrorSource", f"cannot read {rec.path}: {e}"))
            continue
        problems = [(r, coords.validate_ltwh(r.ltwh)) for r in rec.regions]
        bad = [(r, why) for r, why in problems if why]
        if bad:  # one bad box fails its image here, instead of the whole batch in the workspace
            report.failed.append((rec.name, "BadRequestImageRegions", f"region {bad[0][0].tag!r}: {bad[0][1]}"))
            continue
        boxes = [(r.tag, coords.clip_ltwh(r.ltwh)) for r in rec.regions]  # absorb float noise at the border
        regions = [{"tag_id": tag_ids[t], "left": b[0], "top": b[1], "width": b[2], "height": b[3]} for t, b in boxes]
        batch.append((rec, ImageEntry(data=data, name=rec.name, tag_ids=[tag_ids[t] for t in rec.tags],
                                      regions=regions)))
        if len(batch) >= batch_size:
            flush()
    flush()
    return report


def resolve_domain(domain: str | None, project_type: str) -> str:
    """A domain id from an id or an exact Azure name (e.g. "General (compact)") of the right project type;
    None gives the compact default for the type, so what is trained can be exported."""
    if domain is None:
        return domains.find_domain(DEFAULT_DOMAIN[project_type], project_type).id
    try:
        found = domains.get_domain(domain)
    except CvlabError:
        found = domains.find_domain(domain, project_type)
    if found.type != project_type:
        raise CvlabError("BadRequestProjectUnknownDomain",
                         f"Domain {found.name!r} is a {found.type} domain; this data set needs a {project_type} one.")
    return found.id


def _get_or_create_project(ws, name: str, project_type: str, classification_type: str, domain: str | None,
                           description: str = "") -> tuple[object, bool]:
    project = ws.find_project(name)
    if project is not None:
        if project.project_type != project_type:
            raise CvlabError("BadRequestProjectUnsupportedDomainTypeChange",
                             f"Project {name!r} is {project.project_type}, but this data set is {project_type}: "
                             "import it into another project (pick a new --project name).")
        return project, False
    return ws.create_project(name, description=description, domain_id=resolve_domain(domain, project_type),
                             classification_type=classification_type), True


def import_path(ws, path, *, project: str | None = None, project_id: str | None = None, format: str | None = None,
                domain: str | None = None, classification_type: str | None = None,
                progress: bool = False) -> ImportReport:
    """Import a folder or .zip (any supported format) into project ``project_id``, or into the project named
    ``project`` (created when missing, with ``domain`` — an id or name — or a compact domain of the right type)."""
    path = Path(path)
    if not path.exists():
        raise CvlabError("BadRequest", f"{path} does not exist")
    with tempfile.TemporaryDirectory(prefix="cvlab-import-") as tmp:
        root = formats.extract_zip(path, Path(tmp)) if path.is_file() and path.suffix.lower() == ".zip" else path
        if root is not path:  # a zip with a single top-level folder: use that folder
            entries = [p for p in root.iterdir() if not p.name.startswith((".", "__MACOSX"))]
            if len(entries) == 1 and entries[0].is_dir():
                root = entries[0]
        labeled = formats.read(root, format)
        if project_id is not None:
            target, made = ws.get_project(project_id), False
        else:
            name = project or path.stem
            target, made = _get_or_create_project(ws, name, labeled.project_type,
                                                  classification_type or labeled.classification_type, domain)
        if target.project_type != labeled.project_type:
            raise CvlabError("BadRequest", f"{path} holds a {labeled.project_type} set but project "
                             f"{target.name!r} is {target.project_type}.")
        order = [t for t in labeled.tags if t]  # create tags in the file's order (stable YOLO/COCO ids)
        _, created = ensure_tags(ws, target.id, order, labeled.negative_tags | (
            {NEGATIVE} if target.project_type == "Classification" else set()))
        report = import_records(ws, target.id, labeled.records, negative_tags=labeled.negative_tags,
                                progress=progress)
    report.tags_created = created + report.tags_created
    report.project_created = made
    return report


def project_records(ws, project_id: str) -> Iterable[Record]:
    """The project's labelled images as records pointing at the stored (original) files, oldest first."""
    ext = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "GIF": ".gif", "WEBP": ".webp"}
    for im in ws.iter_images(project_id):
        suffix = ext.get((im.format or "").upper(), ".jpg")
        stem = Path(im.original_name or im.id).stem or im.id
        yield Record(name=stem + suffix, path=ws.image_path(im), width=im.width, height=im.height,
                     tags=[t.tag_name for t in im.tags],
                     regions=[Region(r.tag_name, r.left, r.top, r.width, r.height) for r in im.regions])


def export_project(ws, project_id: str, out, format: str | None = None) -> Path:
    """Write a project's images and labels to folder ``out`` (folder/cvjson for classification;
    coco/voc/yolo/cvjson for detection). The stored bytes are copied, not re-encoded."""
    project = ws.get_project(project_id)
    fmt = format or ("folder" if project.project_type == "Classification" else "coco")
    tags = ws.get_tags(project.id)
    return formats.write(project_records(ws, project.id), Path(out), fmt, tags=[t.name for t in tags],
                         project_type=project.project_type, classification_type=project.classification_type,
                         negative_tags=[t.name for t in tags if t.type == "Negative"])

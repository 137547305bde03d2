"""Images: creating them in batches of 64 (Azure's ImageCreateSummary), from bytes, files or folders."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from .. import rules
from ..errors import CvlabError
from ..images import batch_status, inspect_image
from ..model import ImageCreateResult, ImageCreateSummary, ImageEntry, Project, Tag
from .store import _guid, _guids, _is_guid, _marks, _new_id, _now, _ts

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}


class ImagesCreateMixin:
    """Creating images: batches of 64 with a per-image status (Azure's ImageCreateSummary), files, folders."""

    def _parse_regions(self, regions: Any) -> list[tuple[str, float, float, float, float]]:
        out = []
        for r in regions or ():
            get = r.get if isinstance(r, dict) else (lambda k, _r=r: getattr(_r, k, None))
            tag_id = get("tag_id") or get("tagId")
            if tag_id is None:
                raise CvlabError("BadRequestImageRegions", f"Region {r!r} has no tag_id: every box needs a tag.")
            box = rules.check_region(get("left"), get("top"), get("width"), get("height"))
            out.append((_guid(tag_id, "Region tag id"), *box))
        return out

    def create_images(self, project_id: str, entries: Sequence[ImageEntry | bytes], tag_ids: Any = None,
                      metadata: dict | None = None) -> ImageCreateSummary:
        """Create up to 64 images; each gets a status like Azure's ImageCreateSummary.

        Good images are stored, bad ones reported; an image already in the project is `OKDuplicate` and the
        existing image is returned unchanged. Region geometry errors reject the whole batch (BadRequestImageRegions).
        """
        p = self.get_project(project_id)
        entries = [e if isinstance(e, ImageEntry) else ImageEntry(data=e) for e in entries]
        cap = rules.limit("images_per_batch")
        if not entries:
            raise CvlabError("BadRequestImageBatch", "The batch has no images: pass at least one image.")
        if len(entries) > cap:
            raise CvlabError("BadRequestExceededBatchSize",
                             f"A batch holds at most {cap} images; this one has {len(entries)}. Split it (or use "
                             "project.add_images / ws.add_images, which batch for you).")
        batch_tags = _guids(tag_ids, "Tag id")
        if len(batch_tags) > rules.limit("tags_per_batch"):
            raise CvlabError("BadRequestImageBatch", f"A batch applies at most {rules.limit('tags_per_batch')} tags; "
                                                     f"got {len(batch_tags)}.")
        meta = rules.check_metadata(metadata)
        tags = {r["id"]: r for r in self._q("SELECT id, name, type FROM tags WHERE project_id = ?", (p.id,))}

        results: list[ImageCreateResult | None] = [None] * len(entries)
        todo = []  # (index, entry, label, tag_ids, regions, info) of entries that passed validation
        for i, e in enumerate(entries):
            label = e.source_url if e.source_url is not None else e.name
            e_tags = list(dict.fromkeys(batch_tags + _guids(e.tag_ids, "Tag id")))
            e_regions = self._parse_regions(e.regions)
            bad_name = rules.image_name_problem(e.name)
            if bad_name:
                results[i] = ImageCreateResult(label if e.source_url is not None else None, "ErrorSource", None,
                                               bad_name + " Rename the file.")
                continue
            try:
                info = inspect_image(e.data, "training", name=e.name)
            except CvlabError as err:
                results[i] = ImageCreateResult(label, batch_status(err), None, err.message)
                continue
            unknown = [t for t in e_tags + [r[0] for r in e_regions] if t not in tags]
            if unknown:
                results[i] = ImageCreateResult(label, "ErrorInvalidTag", None,
                                               f"Tag {unknown[0]} does not exist in project {p.name!r}: create it "
                                               "first (ws.create_tag) or fix the id.")
                continue
            if any(tags[r[0]]["type"] == "Negative" for r in e_regions):
                results[i] = ImageCreateResult(label, "ErrorInvalidTag", None,
                                               "A region cannot use the Negative tag: boxes need a regular tag.")
                continue
            problem = rules.image_tag_problem(p.project_type, p.classification_type,
                                              [tags[t]["type"] for t in e_tags], len(e_regions))
            if problem:
                results[i] = ImageCreateResult(label, problem[0], None, problem[2])
                continue
            todo.append((i, e, label, e_tags, e_regions, info))

        # Blobs first (durable), rows after: a crash in between leaves only a repairable orphan blob.
        shas = list({t[5].sha256 for t in todo})
        existing = {r[0] for r in self._q(f"SELECT sha256 FROM images WHERE project_id = ? AND sha256 IN "
                                          f"({_marks(len(shas))})", [p.id] + shas)} if shas else set()
        failed = self._write_blobs(((info.sha256, bytes(e.data)) for _, e, _, _, _, info in todo
                                    if info.sha256 not in existing), raise_errors=False)
        for i, e, label, _, _, info in todo:
            if info.sha256 in failed:
                why = failed[info.sha256].strerror or str(failed[info.sha256])
                results[i] = ImageCreateResult(label, "ErrorStorage", None,
                                               f"Could not store the image ({why}); free disk space and add it again.")
        todo = [t for t in todo if t[5].sha256 not in failed]

        try:
            created_ids, dup_of, limit_hit = self._insert_images(p, todo, meta)
        except CvlabError as err:
            if err.status != 507:
                raise
            with contextlib.suppress(Exception):  # the blobs just written belong to no row now
                self._gc_blobs(t[5].sha256 for t in todo)
            for i, e, label, *_ in todo:
                results[i] = ImageCreateResult(label, "ErrorStorage", None, err.message)
            return ImageCreateSummary(False, results)

        wanted = list(dict.fromkeys(list(created_ids.values()) + list(dup_of.values())))
        by_id = {}
        for s in range(0, len(wanted), 256):
            by_id.update({im.id: im for im in self.get_images(p.id, image_ids=wanted[s:s + 256], take=256)})
        for i, e, label, *_ in todo:
            if i in created_ids:
                results[i] = ImageCreateResult(label, "OK", by_id[created_ids[i]])
            elif i in dup_of:
                results[i] = ImageCreateResult(label, "OKDuplicate", by_id.get(dup_of[i]),
                                               "The same image (by content) is already in the project; the "
                                               "existing image is returned and its labels are unchanged.")
            else:
                results[i] = ImageCreateResult(label, "ErrorLimitExceed", None,
                                               f"The project holds at most {rules.limit('images_per_project', self.tier):,} "
                                               f"images on tier {self.tier}: delete some first.")
        return ImageCreateSummary(all(r.status == "OK" for r in results), results)

    def _insert_images(self, p: Project, todo: list, meta: dict) -> tuple[dict, dict, set]:
        """Rows for validated, stored images, in one transaction: {index: new id}, {index: id of the existing
        duplicate}, {indexes refused by the project image limit}."""
        created_ids: dict[int, str] = {}
        dup_of: dict[int, str] = {}
        limit_hit: set[int] = set()
        with self._tx() as c:
            count = c.execute("SELECT COUNT(*) FROM images WHERE project_id = ?", (p.id,)).fetchone()[0]
            cap_images = rules.limit("images_per_project", self.tier)
            seen: dict[str, str] = {}
            base = _now()
            for k, (i, e, label, e_tags, e_regions, info) in enumerate(todo):
                row = c.execute("SELECT id FROM images WHERE project_id = ? AND sha256 = ?",
                                (p.id, info.sha256)).fetchone()
                if row or info.sha256 in seen:
                    dup_of[i] = row[0] if row else seen[info.sha256]
                    continue
                if cap_images is not None and count >= cap_images:
                    limit_hit.add(i)
                    continue
                if not self.blob_path(info.sha256).exists():  # a concurrent delete collected it: write again
                    self._write_blob(info.sha256, bytes(e.data))
                iid = _new_id()
                created = _ts(base)  # same time for a batch; rowid keeps Newest/Oldest stable
                c.execute("INSERT INTO images(id, project_id, sha256, original_name, width, height, format, "
                          "metadata, created) VALUES (?,?,?,?,?,?,?,?,?)",
                          (iid, p.id, info.sha256, e.name.strip() if e.name else e.name, info.width, info.height, info.format,
                           json.dumps(meta), created))
                c.executemany("INSERT INTO image_tags(image_id, tag_id, created) VALUES (?,?,?)",
                              [(iid, t, created) for t in e_tags])
                c.executemany("INSERT INTO regions(id, image_id, tag_id, left, top, width, height, created) "
                              "VALUES (?,?,?,?,?,?,?,?)", [(_new_id(), iid, *r, created) for r in e_regions])
                seen[info.sha256] = iid
                created_ids[i] = iid
                count += 1
            if created_ids:
                c.execute("UPDATE projects SET last_modified = ? WHERE id = ?", (_ts(_now()), p.id))
        return created_ids, dup_of, limit_hit

    def _read_source(self, item: Any) -> ImageEntry | ImageCreateResult:
        if isinstance(item, ImageEntry):
            return item
        if isinstance(item, (bytes, bytearray, memoryview)):
            return ImageEntry(data=bytes(item))
        path = Path(item)
        try:
            return ImageEntry(data=path.read_bytes(), name=path.name, source_url=str(path))
        except OSError as e:
            return ImageCreateResult(str(path), "ErrorSource", None, f"Cannot read {path}: {e.strerror or e}.")

    def create_images_from_files(self, project_id: str, paths: Iterable[str | os.PathLike],
                                 tag_ids: Any = None, metadata: dict | None = None) -> ImageCreateSummary:
        """Create images from files (any number: sent in batches of 64); unreadable files are `ErrorSource`."""
        return self._create_many(project_id, list(paths), tag_ids, None, metadata)

    def _create_many(self, project_id, items, tag_ids, regions, metadata) -> ImageCreateSummary:
        cap = rules.limit("images_per_batch")
        out: list[ImageCreateResult] = []
        pending: list[tuple[int, ImageEntry]] = []
        slots: list[ImageCreateResult | None] = []

        def flush():
            if pending:
                summary = self.create_images(project_id, [e for _, e in pending], tag_ids=tag_ids, metadata=metadata)
                for (slot, _), r in zip(pending, summary.images):
                    slots[slot] = r
                pending.clear()

        for item in items:
            src = self._read_source(item)
            if isinstance(src, ImageCreateResult):
                slots.append(src)
                continue
            if regions is not None:
                src = ImageEntry(src.data, src.name, src.tag_ids, tuple(src.regions) + tuple(regions), src.source_url)
            slots.append(None)
            pending.append((len(slots) - 1, src))
            if len(pending) == cap:
                flush()
        flush()
        out = [s for s in slots if s is not None]
        return ImageCreateSummary(bool(out) and all(r.status == "OK" for r in out), out)

    def add_images(self, project_id: str, items: Any, tags: Any = None, regions: Any = None,
                   create_missing_tags: bool = True, metadata: dict | None = None) -> ImageCreateSummary:
        """Notebook-friendly ingestion: files, folders, bytes or ImageEntry objects, any number of them.

        `tags` are names, ids or Tag objects applied to every image (missing names are created when
        `create_missing_tags`); folders add their image files (sorted).
        """
        p = self.get_project(project_id)
        if isinstance(items, (str, os.PathLike, bytes, bytearray, ImageEntry)):
            items = [items]
        expanded: list[Any] = []
        for it in items:
            if isinstance(it, (str, os.PathLike)) and Path(it).is_dir():
                expanded += sorted(q for q in Path(it).iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
            else:
                expanded.append(it)
        if isinstance(tags, (str, Tag)):
            tags = [tags]
        tag_ids = []
        for t in tags or ():
            try:
                tag_ids.append(self.resolve_tag(p.id, t).id)
            except CvlabError as err:
                if err.code != "NotFoundTag" or not create_missing_tags or isinstance(t, Tag) or _is_guid(t):
                    raise
                tag_ids.append(self.create_tag(p.id, str(t)).id)
        if not expanded:
            return ImageCreateSummary(False, [])
        return self._create_many(p.id, expanded, tag_ids or None, regions, metadata)

"""Images: deleting them, and their labels (whole-image tags, regions), all or nothing on a rule violation."""
from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterable

from .. import rules
from ..errors import CvlabError
from ..model import Image, Project
from .store import _dt, _guid, _guids, _marks, _new_id, _now, _ts, uses_reserve


class ImagesLabelMixin:
    """Deleting images, and labelling them: whole-image tags and regions, all or nothing on a rule violation."""

    def _existing_image_ids(self, project_id: str, image_ids: list[str]) -> None:
        found = {r[0] for r in self._q(f"SELECT id FROM images WHERE project_id = ? AND id IN "
                                       f"({_marks(len(image_ids))})", [project_id] + image_ids)}
        missing = [i for i in image_ids if i not in found]
        if missing:
            raise CvlabError("NotFoundImage", f"{len(missing)} image id(s) do not exist in this project "
                                              f"(first: {missing[0]}); nothing was changed.")

    @uses_reserve
    def delete_images(self, project_id: str, image_ids: Any = None, all_images: bool = False) -> int:
        """Delete images (by id, at most 256, or all); returns how many were deleted. Blobs no longer used go.
        Works on a full disk (it is how space is freed)."""
        p = self.get_project(project_id)
        if all_images:
            shas = [r[0] for r in self._q("SELECT sha256 FROM images WHERE project_id = ?", (p.id,))]
            with self._tx() as c:
                n = c.execute("DELETE FROM images WHERE project_id = ?", (p.id,)).rowcount
        else:
            ids = _guids(image_ids, "Image id")
            if not ids:
                raise CvlabError("BadRequestInvalidIds", "Pass image_ids to delete (or all_images=True).")
            if len(ids) > rules.limit("ids_per_request"):
                raise CvlabError("BadRequestInvalidIds", f"Delete at most {rules.limit('ids_per_request')} images "
                                                         "per call.")
            self._existing_image_ids(p.id, ids)
            m = _marks(len(ids))
            shas = [r[0] for r in self._q(f"SELECT sha256 FROM images WHERE id IN ({m})", ids)]
            with self._tx() as c:
                n = c.execute(f"DELETE FROM images WHERE project_id = ? AND id IN ({m})", [p.id] + ids).rowcount
        self._gc_blobs(shas)
        return n

    def _check_labels(self, c: sqlite3.Connection, p: Project, image_ids: Iterable[str]) -> None:
        """Raise if any image now breaks a tagging rule (called inside the write transaction: rolls back)."""
        for iid in image_ids:
            types = [r[0] for r in c.execute("SELECT t.type FROM image_tags it JOIN tags t ON t.id = it.tag_id "
                                             "WHERE it.image_id = ?", (iid,))]
            n_regions = c.execute("SELECT COUNT(*) FROM regions WHERE image_id = ?", (iid,)).fetchone()[0]
            problem = rules.image_tag_problem(p.project_type, p.classification_type, types, n_regions)
            if problem:
                raise CvlabError(problem[1], f"Image {iid}: {problem[2]} Nothing was changed.")

    def _tag_types(self, project_id: str) -> dict[str, str]:
        return {r[0]: r[1] for r in self._q("SELECT id, type FROM tags WHERE project_id = ?", (project_id,))}

    def create_image_tags(self, project_id: str, pairs: Iterable[Any]) -> dict:
        """Tag images: pairs of (image_id, tag_id) or dicts {image_id, tag_id}. All or nothing on rule violations.

        Returns {"created": [...], "duplicated": [...], "exceeded": []} of {"image_id", "tag_id"} dicts.
        """
        p = self.get_project(project_id)
        norm = []
        for pair in pairs:
            if isinstance(pair, dict):
                iid, tid = pair.get("image_id", pair.get("imageId")), pair.get("tag_id", pair.get("tagId"))
            else:
                iid, tid = pair
            norm.append((_guid(getattr(iid, "id", iid), "Image id"), _guid(getattr(tid, "id", tid), "Tag id")))
        norm = list(dict.fromkeys(norm))
        if not norm:
            return {"created": [], "duplicated": [], "exceeded": []}
        types = self._tag_types(p.id)
        for _, t in norm:
            if t not in types:
                raise CvlabError("NotFoundTag", f"Tag {t} does not exist in project {p.name!r}.")
        self._existing_image_ids(p.id, list(dict.fromkeys(i for i, _ in norm)))
        created, duplicated = [], []
        now = _ts(_now())
        with self._tx() as c:
            for iid, tid in norm:
                cur = c.execute("INSERT OR IGNORE INTO image_tags(image_id, tag_id, created) VALUES (?,?,?)",
                                (iid, tid, now))
                (created if cur.rowcount else duplicated).append({"image_id": iid, "tag_id": tid})
            self._check_labels(c, p, {i for i, _ in norm})
        return {"created": created, "duplicated": duplicated, "exceeded": []}

    def delete_image_tags(self, project_id: str, image_ids: Any, tag_ids: Any) -> int:
        """Remove these tags from these images; returns how many (image, tag) pairs went."""
        p = self.get_project(project_id)
        iids, tids = _guids(image_ids, "Image id"), _guids(tag_ids, "Tag id")
        if len(iids) > rules.limit("ids_per_delete") or len(tids) > rules.limit("tags_per_batch"):
            raise CvlabError("BadRequestInvalidIds", f"Pass at most {rules.limit('ids_per_delete')} image ids and "
                                                     f"{rules.limit('tags_per_batch')} tag ids per call.")
        if not iids or not tids:
            return 0
        with self._tx() as c:
            return c.execute(f"DELETE FROM image_tags WHERE tag_id IN ({_marks(len(tids))}) AND image_id IN "
                             f"(SELECT id FROM images WHERE project_id = ? AND id IN ({_marks(len(iids))}))",
                             tids + [p.id] + iids).rowcount

    def create_image_regions(self, project_id: str, regions: Iterable[dict]) -> dict:
        """Add boxes: dicts {image_id, tag_id, left, top, width, height} (at most 64 per call).

        Returns {"created": [region dicts with image_id, region_id, tag_id, tag_name, created, left, top, width,
        height], "duplicated": [...entries], "exceeded": [...entries over 300 per image]}.
        """
        p = self.get_project(project_id)
        if p.project_type != "ObjectDetection":
            raise CvlabError("BadRequestImageRegions", f"Project {p.name!r} is a classification project: regions "
                                                       "(boxes) belong to object detection projects; tag whole "
                                                       "images instead.")
        regions = list(regions)
        if len(regions) > rules.limit("regions_per_batch"):
            raise CvlabError("BadRequestExceededBatchSize", f"Send at most {rules.limit('regions_per_batch')} "
                                                            f"regions per call (got {len(regions)}).")
        entries = []
        for r in regions:
            iid = r.get("image_id", r.get("imageId")) if isinstance(r, dict) else None
            if iid is None:
                raise CvlabError("BadRequestImageRegions", f"Region {r!r} has no image_id.")
            (tid, *box), = self._parse_regions([r])
            entries.append((_guid(iid, "Image id"), tid, *box))
        types = self._tag_types(p.id)
        for e in entries:
            if e[1] not in types:
                raise CvlabError("NotFoundTag", f"Tag {e[1]} does not exist in project {p.name!r}.")
            if types[e[1]] == "Negative":
                raise CvlabError("BadRequestImageRegions", "A region cannot use the Negative tag.")
        if entries:
            self._existing_image_ids(p.id, list(dict.fromkeys(e[0] for e in entries)))
        cap = rules.limit("regions_per_image_training")
        created, duplicated, exceeded = [], [], []
        now = _ts(_now())
        with self._tx() as c:
            for iid, tid, l, t, w, h in entries:
                entry = {"image_id": iid, "tag_id": tid, "left": l, "top": t, "width": w, "height": h}
                if c.execute("SELECT 1 FROM regions WHERE image_id=? AND tag_id=? AND abs(left-?)<1e-9 AND "
                             "abs(top-?)<1e-9 AND abs(width-?)<1e-9 AND abs(height-?)<1e-9",
                             (iid, tid, l, t, w, h)).fetchone():
                    duplicated.append(entry)
                    continue
                if c.execute("SELECT COUNT(*) FROM regions WHERE image_id = ?", (iid,)).fetchone()[0] >= cap:
                    exceeded.append(entry)
                    continue
                rid = _new_id()
                c.execute("INSERT INTO regions(id, image_id, tag_id, left, top, width, height, created) "
                          "VALUES (?,?,?,?,?,?,?,?)", (rid, iid, tid, l, t, w, h, now))
                created.append({**entry, "region_id": rid, "tag_name": None, "created": _dt(now)})
        names = {t.id: t.name for t in self.get_tags(p.id)}
        for e in created:
            e["tag_name"] = names.get(e["tag_id"])
        return {"created": created, "duplicated": duplicated, "exceeded": exceeded}

    def delete_image_regions(self, project_id: str, region_ids: Any) -> int:
        """Delete regions by id; returns how many went."""
        p = self.get_project(project_id)
        rids = _guids(region_ids, "Region id")
        if len(rids) > rules.limit("ids_per_delete"):
            raise CvlabError("BadRequestInvalidIds", f"Delete at most {rules.limit('ids_per_delete')} regions per call.")
        if not rids:
            return 0
        with self._tx() as c:
            return c.execute(f"DELETE FROM regions WHERE id IN ({_marks(len(rids))}) AND image_id IN "
                             "(SELECT id FROM images WHERE project_id = ?)", rids + [p.id]).rowcount

    def set_image_labels(self, project_id: str, image_id: str, tag_ids: Any = None,
                         regions: Any = None) -> Image:
        """Replace an image's whole-image tags and/or regions in one transaction (None = leave unchanged)."""
        p = self.get_project(project_id)
        img = self.get_image(p.id, image_id)
        types = self._tag_types(p.id)
        new_tags = _guids(tag_ids, "Tag id") if tag_ids is not None else None
        new_regions = self._parse_regions(regions) if regions is not None else None
        for t in (new_tags or []) + [r[0] for r in (new_regions or [])]:
            if t not in types:
                raise CvlabError("NotFoundTag", f"Tag {t} does not exist in project {p.name!r}.")
        if new_regions and p.project_type != "ObjectDetection":
            raise CvlabError("BadRequestImageRegions", "Regions (boxes) belong to object detection projects.")
        if any(types[r[0]] == "Negative" for r in new_regions or []):
            raise CvlabError("BadRequestImageRegions", "A region cannot use the Negative tag.")
        now = _ts(_now())
        with self._tx() as c:
            if new_tags is not None:
                c.execute("DELETE FROM image_tags WHERE image_id = ?", (img.id,))
                c.executemany("INSERT INTO image_tags(image_id, tag_id, created) VALUES (?,?,?)",
                              [(img.id, t, now) for t in new_tags])
            if new_regions is not None:
                c.execute("DELETE FROM regions WHERE image_id = ?", (img.id,))
                c.executemany("INSERT INTO regions(id, image_id, tag_id, left, top, width, height, created) "
                              "VALUES (?,?,?,?,?,?,?,?)", [(_new_id(), img.id, *r, now) for r in new_regions])
            self._check_labels(c, p, [img.id])
        return self.get_image(p.id, img.id)

    def update_image_metadata(self, project_id: str, image_ids: Any, metadata: dict) -> list[Image]:
        """Merge metadata into images (text keys and values)."""
        p = self.get_project(project_id)
        ids = _guids(image_ids, "Image id")
        meta = rules.check_metadata(metadata)
        if ids:
            self._existing_image_ids(p.id, ids)
        with self._tx() as c:
            for iid in ids:
                stored = c.execute("SELECT metadata FROM images WHERE id = ?", (iid,)).fetchone()[0]
                cur = self._json(stored, "images", "metadata", iid, dict, "{}")
                cur.update(meta)
                rules.check_metadata(cur)
                c.execute("UPDATE images SET metadata = ? WHERE id = ?", (json.dumps(cur), iid))
        return self.get_images(p.id, image_ids=ids, take=rules.limit("take")) if ids else []

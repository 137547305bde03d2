"""Images: reading pages (Azure's get_images filters and metadata ``$filter``), counts, one image, its bytes."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from .. import rules
from ..errors import CvlabError
from ..images import load_rgb
from ..model import Image, ImageRegion, ImageTag
from .store import _dt, _guid, _guids, _marks

_FILTER_TERM = re.compile(r"""\s*([A-Za-z0-9_.\-]+)\s+(eq|ne)\s+'((?:[^']|'')*)'\s*""", re.IGNORECASE)
_FILTER_AND = re.compile(r"and(?=\s|$)", re.IGNORECASE)


def parse_metadata_filter(expr: str | None) -> list[tuple[str, str, str]]:
    """Azure's image metadata `$filter`: terms `key eq 'value'` / `key ne 'value'` joined by `and`. Read term by
    term, so a quoted value keeps whatever it holds (`note eq 'salt and pepper'`, `''` for a quote); at most
    ``filter_terms`` terms (a 400, long before SQLite's expression depth)."""
    if expr is None or not str(expr).strip():
        return []
    text, pos, terms = str(expr), 0, []
    cap = rules.limit("filter_terms")
    while True:
        m = _FILTER_TERM.match(text, pos)
        if not m:
            rest = text[pos:].strip()
            raise CvlabError("BadRequestInvalid",
                             f"Cannot read the metadata filter at {rest[:80]!r}: write terms like key eq 'value' or "
                             "key ne 'value', joined with 'and'.")
        terms.append((m.group(1), m.group(2).lower(), m.group(3).replace("''", "'")))
        if len(terms) > cap:
            raise CvlabError("BadRequestInvalid", f"The metadata filter has more than {cap} terms: filter on fewer "
                             "metadata terms.")
        pos = m.end()
        if pos == len(text):
            return terms
        joined = _FILTER_AND.match(text, pos)
        if not joined:
            raise CvlabError("BadRequestInvalid",
                             f"Cannot read the metadata filter at {text[pos:pos + 80]!r}: join terms with 'and'.")
        pos = joined.end()


class ImagesReadMixin:
    """Reading images: pages filtered like Azure's get_images, counts, one image, its bytes and pixels."""

    @staticmethod
    def _filters(project_id: str, tagging_status: str, tag_ids: list[str], image_ids: list[str],
                 filter: str | None = None):
        rules.check_choice(tagging_status, rules.TAGGING_STATUSES, "taggingStatus", "BadRequestInvalid")
        where, args = ["i.project_id = ?"], [project_id]
        for key, op, value in parse_metadata_filter(filter):
            where.append(f"json_extract(i.metadata, ?) {'IS' if op == 'eq' else 'IS NOT'} ?")
            args += ['$."' + key.replace('"', '""') + '"', value]
        labelled = ("(EXISTS (SELECT 1 FROM image_tags x WHERE x.image_id = i.id) OR "
                    "EXISTS (SELECT 1 FROM regions y WHERE y.image_id = i.id))")
        if tagging_status == "Tagged":
            where.append(labelled)
        elif tagging_status == "Untagged":
            where.append("NOT " + labelled)
        if tag_ids:
            m = _marks(len(tag_ids))
            where.append(f"(EXISTS (SELECT 1 FROM image_tags x WHERE x.image_id = i.id AND x.tag_id IN ({m})) OR "
                         f"EXISTS (SELECT 1 FROM regions y WHERE y.image_id = i.id AND y.tag_id IN ({m})))")
            args += tag_ids + tag_ids
        if image_ids:
            where.append(f"i.id IN ({_marks(len(image_ids))})")
            args += image_ids
        return " AND ".join(where), args

    def _hydrate(self, rows: list[sqlite3.Row]) -> list[Image]:
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        tags: dict[str, list[ImageTag]] = {i: [] for i in ids}
        regions: dict[str, list[ImageRegion]] = {i: [] for i in ids}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            m = _marks(len(part))
            for r in self._q(f"SELECT it.image_id, it.tag_id, t.name, it.created FROM image_tags it "
                             f"JOIN tags t ON t.id = it.tag_id WHERE it.image_id IN ({m}) ORDER BY it.rowid", part):
                tags[r[0]].append(ImageTag(r[1], r[2], _dt(r[3])))
            for r in self._q(f"SELECT r.*, t.name AS tag_name FROM regions r JOIN tags t ON t.id = r.tag_id "
                             f"WHERE r.image_id IN ({m}) ORDER BY r.rowid", part):
                regions[r["image_id"]].append(ImageRegion(r["id"], r["tag_id"], r["tag_name"], _dt(r["created"]),
                                                          r["left"], r["top"], r["width"], r["height"]))
        return [Image(id=r["id"], project_id=r["project_id"], sha256=r["sha256"], original_name=r["original_name"],
                      width=r["width"], height=r["height"], format=r["format"], created=_dt(r["created"]),
                      tags=tags[r["id"]], regions=regions[r["id"]],
                      metadata=self._json(r["metadata"], "images", "metadata", r["id"], dict, "{}"))
                for r in rows]

    def get_images(self, project_id: str, *, tagging_status: str = "All", tag_ids: Any = None,
                   image_ids: Any = None, order_by: str = "Newest", take: int = 50, skip: int = 0,
                   filter: str | None = None) -> list[Image]:
        """A page of images (take <= 256), filtered like Azure's get_images; tag_ids matches images with any of
        them; `filter` is Azure's metadata expression, e.g. "camera eq 'line 2' and shift ne 'night'"."""
        p = self.get_project(project_id)
        tag_ids = _guids(tag_ids, "Tag id")
        image_ids = _guids(image_ids, "Image id")
        if len(tag_ids) > rules.limit("tags_per_batch"):
            raise CvlabError("BadRequestInvalid", f"Filter on at most {rules.limit('tags_per_batch')} tags at once.")
        if len(image_ids) > rules.limit("ids_per_request"):
            raise CvlabError("BadRequestInvalidIds", f"Ask for at most {rules.limit('ids_per_request')} image ids "
                                                     "per call.")
        rules.check_choice(order_by, rules.ORDER_BY, "orderBy", "BadRequestInvalid")
        if not isinstance(take, int) or not 0 <= take <= rules.limit("take"):
            raise CvlabError("BadRequestInvalid", f"take={take!r}: use 0..{rules.limit('take')} and page with skip "
                                                  "(or ws.iter_images to walk all images).")
        if not isinstance(skip, int) or skip < 0:
            raise CvlabError("BadRequestInvalid", f"skip={skip!r}: use a non-negative integer.")
        where, args = self._filters(p.id, tagging_status, tag_ids, image_ids, filter)
        direction = "DESC" if order_by == "Newest" else "ASC"
        rows = self._q(f"SELECT i.* FROM images i WHERE {where} ORDER BY i.created {direction}, "
                       f"i.rowid {direction} LIMIT ? OFFSET ?", args + [take, skip])
        return self._hydrate(rows)

    def iter_images(self, project_id: str, *, tagging_status: str = "All", tag_ids: Any = None,
                    order_by: str = "Oldest", page: int = 256, filter: str | None = None) -> Iterator[Image]:
        """Every matching image, oldest first by default (for training and exporters; pages internally)."""
        skip = 0
        while True:
            batch = self.get_images(project_id, tagging_status=tagging_status, tag_ids=tag_ids, order_by=order_by,
                                    take=page, skip=skip, filter=filter)
            yield from batch
            if len(batch) < page:
                return
            skip += page

    def get_image_count(self, project_id: str, *, tagging_status: str = "All", tag_ids: Any = None,
                        filter: str | None = None) -> int:
        """How many images match (the same filters as ``get_images``).

        >>> ws.get_image_count(project.id, tagging_status="Untagged")      # doctest: +SKIP
        12
        """
        p = self.get_project(project_id)
        where, args = self._filters(p.id, tagging_status, _guids(tag_ids, "Tag id"), [], filter)
        return self._q1(f"SELECT COUNT(*) FROM images i WHERE {where}", args)[0]

    def get_image(self, project_id: str, image_id: str) -> Image:
        """One image of the project by id, with its tags and regions."""
        p = self.get_project(project_id)
        iid = _guid(getattr(image_id, "id", image_id), "Image id")
        rows = self._q("SELECT * FROM images WHERE project_id = ? AND id = ?", (p.id, iid))
        if not rows:
            raise CvlabError("NotFoundImage", f"Image {iid} does not exist in project {p.name!r}.")
        return self._hydrate(rows)[0]

    def image_path(self, image: Image) -> Path:
        """The stored file (original bytes, not re-encoded) of an image or stored prediction."""
        return self.blob_path(image.sha256)

    def read_image_bytes(self, image: Image) -> bytes:
        """The stored file's bytes, exactly as uploaded."""
        return self.image_path(image).read_bytes()

    def open_image(self, image: Image):
        """The image as an EXIF-oriented RGB PIL image."""
        return load_rgb(self.image_path(image))

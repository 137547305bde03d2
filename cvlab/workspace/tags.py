"""Tags: Regular, Negative (classification only, one per project) and GeneralProduct."""
from __future__ import annotations

import sqlite3
from typing import Any

from .. import rules
from ..errors import CvlabError
from ..model import Tag
from .store import _guid, _new_id, _now, _ts


class TagsMixin:
    """Tags of a project: Regular, Negative (classification only, one per project) and GeneralProduct."""

    _TAG_SQL = ("SELECT t.*, (SELECT COUNT(*) FROM (SELECT image_id FROM image_tags WHERE tag_id = t.id UNION "
                "SELECT image_id FROM regions WHERE tag_id = t.id)) AS image_count FROM tags t ")

    @staticmethod
    def _tag(row: sqlite3.Row) -> Tag:
        return Tag(id=row["id"], project_id=row["project_id"], name=row["name"], description=row["description"],
                   type=row["type"], image_count=row["image_count"])

    def create_tag(self, project_id: str, name: str, description: str = "", type: str = "Regular") -> Tag:
        """A new tag; ``type`` is ``"Regular"``, ``"Negative"`` (images that show none of the tags) or
        ``"GeneralProduct"``.

        >>> ws.create_tag(project.id, "cracked").name      # doctest: +SKIP
        'cracked'
        """
        p = self.get_project(project_id)
        name = rules.check_name(name, "tag", "BadRequestTagName")
        description = rules.check_description(description, "tag", "BadRequestTagDescription")
        type = rules.check_tag_type(type or "Regular")
        tid = _new_id()
        with self._tx() as c:
            rows = c.execute("SELECT name, type FROM tags WHERE project_id = ?", (p.id,)).fetchall()
            rules.check_limit("tags_per_project", self.tier, len(rows), 1)
            rules.check_new_tag_type(p.project_type, type, [r["type"] for r in rows])
            if any(r["name"].lower() == name.lower() for r in rows):
                raise CvlabError("BadRequestTagNameNotUnique",
                                 f"Project {p.name!r} already has a tag called {name!r}: reuse it "
                                 "(project.tag(name)) or choose another name.")
            c.execute("INSERT INTO tags(id, project_id, name, description, type, created) VALUES (?,?,?,?,?,?)",
                      (tid, p.id, name, description, type, _ts(_now())))
        return self.get_tag(p.id, tid)

    def get_tags(self, project_id: str) -> list[Tag]:
        """The project's tags in creation order, each with its ``image_count``."""
        p = self.get_project(project_id)
        return [self._tag(r) for r in self._q(self._TAG_SQL + "WHERE t.project_id = ? ORDER BY t.rowid", (p.id,))]

    def get_tag(self, project_id: str, tag_id: str) -> Tag:
        """One tag of the project by id; ``NotFoundTag`` when there is none."""
        p = self.get_project(project_id)
        tid = _guid(getattr(tag_id, "id", tag_id), "Tag id")
        row = self._q1(self._TAG_SQL + "WHERE t.project_id = ? AND t.id = ?", (p.id, tid))
        if row is None:
            raise CvlabError("NotFoundTag", f"Tag {tid} does not exist in project {p.name!r}: list its tags with "
                                            "ws.get_tags(project_id).")
        return self._tag(row)

    def resolve_tag(self, project_id: str, name_or_id: Any) -> Tag:
        """A tag given a Tag, its id, or its name (case-insensitive)."""
        p = self.get_project(project_id)
        key = getattr(name_or_id, "id", name_or_id)
        key = str(key).strip()
        row = self._q1(self._TAG_SQL + "WHERE t.project_id = ? AND (t.id = ? OR t.name = ?)",
                       (p.id, key.lower(), key))
        if row is None:
            names = ", ".join(t.name for t in self.get_tags(p.id)) or "none yet"
            raise CvlabError("NotFoundTag", f"Project {p.name!r} has no tag {key!r} (tags: {names}). "
                                            "Create it with project.create_tag(name).")
        return self._tag(row)

    def update_tag(self, project_id: str, tag_id: str, *, name: str | None = None, description: str | None = None,
                   type: str | None = None) -> Tag:
        """Rename a tag, change its description or type (Azure's rules for Negative apply)."""
        p = self.get_project(project_id)
        t = self.get_tag(p.id, tag_id)
        new_name = rules.check_name(name, "tag", "BadRequestTagName") if name is not None else t.name
        new_desc = (rules.check_description(description, "tag", "BadRequestTagDescription")
                    if description is not None else t.description)
        new_type = rules.check_tag_type(type) if type is not None else t.type
        with self._tx() as c:
            others = c.execute("SELECT name, type FROM tags WHERE project_id = ? AND id != ?", (p.id, t.id)).fetchall()
            if new_type != t.type:
                rules.check_new_tag_type(p.project_type, new_type, [r["type"] for r in others])
                if new_type == "Negative":
                    mixed = c.execute("SELECT COUNT(*) FROM image_tags a JOIN image_tags b ON a.image_id = b.image_id "
                                      "AND b.tag_id != a.tag_id WHERE a.tag_id = ?", (t.id,)).fetchone()[0]
                    if mixed:
                        raise CvlabError("BadRequestNegativeAndRegularTagOnSameImage",
                                         f"Tag {t.name!r} shares images with other tags, so it cannot become the "
                                         "Negative tag: remove the other tags from those images first.")
            if any(r["name"].lower() == new_name.lower() for r in others):
                raise CvlabError("BadRequestTagNameNotUnique",
                                 f"Project {p.name!r} already has a tag called {new_name!r}: choose another name.")
            c.execute("UPDATE tags SET name = ?, description = ?, type = ? WHERE id = ?",
                      (new_name, new_desc, new_type, t.id))
        return self.get_tag(p.id, t.id)

    def delete_tag(self, project_id: str, tag_id: str) -> None:
        """Delete a tag; it disappears from every image (its regions too). The images stay."""
        t = self.get_tag(project_id, tag_id)
        with self._tx() as c:
            c.execute("DELETE FROM tags WHERE id = ?", (t.id,))

"""Projects: create, read, update, delete, copy (Azure's import); the domain decides Classification vs
ObjectDetection."""
from __future__ import annotations

import json
import shutil
import sqlite3
from typing import Any

from .. import rules
from ..domains import default_domain, get_domain
from ..errors import CvlabError
from ..model import Project
from .store import _dt, _guid, _is_guid, _new_id, _now, _ts, uses_reserve


class ProjectsMixin:
    """Projects, and the domain catalogue they are created on."""

    def _project(self, row: sqlite3.Row) -> Project:
        return Project(id=row["id"], name=row["name"], description=row["description"], domain_id=row["domain_id"],
                       classification_type=row["classification_type"], project_type=row["project_type"],
                       target_export_platforms=self._json(row["target_export_platforms"], "projects",
                                                          "target_export_platforms", row["id"], list, "[]"),
                       settings=self._json(row["settings"], "projects", "settings", row["id"], dict, "{}"),
                       created=_dt(row["created"]),
                       last_modified=_dt(row["last_modified"]), status=row["status"])._bind(self)

    @staticmethod
    def get_domains():
        """Azure's domain catalogue (cvlab.domains), as trainer.get_domains() returns it."""
        from ..domains import get_domains
        return get_domains()

    @staticmethod
    def get_domain(domain_id: str):
        """A domain by id (or a Domain), as ``trainer.get_domain(id)`` returns it."""
        return get_domain(getattr(domain_id, "id", domain_id))

    def _domain_for(self, domain_id: Any):
        domain_id = getattr(domain_id, "id", domain_id)  # a Domain object works too
        if domain_id is None:
            return default_domain("Classification")
        dom = get_domain(rules.check_guid(domain_id, "Domain id", "BadRequestProjectUnknownDomain"),
                         code="BadRequestProjectUnknownDomain")
        if not dom.enabled:
            raise CvlabError("BadRequestProjectUnknownDomain",
                             f"The {dom.name} domain is retired and cannot be used for new work; pick another "
                             "domain from cvlab.domains.get_domains().")
        return dom

    @staticmethod
    def _platforms_for(dom, platforms: Any) -> list[str]:
        platforms = rules.check_export_platforms(platforms)
        bad = [p for p in platforms if p not in dom.exportable_platforms]
        if bad:
            hint = ("only compact domains export: pick a '(compact)' domain" if not dom.exportable
                    else f"it exports to {', '.join(dom.exportable_platforms)}")
            raise CvlabError("BadRequestProjectUnsupportedExportPlatform",
                             f"Domain {dom.name!r} ({dom.type}) cannot export to {', '.join(bad)}: {hint}.")
        return platforms

    def create_project(self, name: str, description: str = "", domain_id: str | None = None,
                       classification_type: str | None = None, target_export_platforms: Any = None,
                       settings: dict | None = None) -> Project:
        """A new project; the domain decides Classification vs ObjectDetection (default: General classification)."""
        return self._create_project(_new_id(), "Succeeded", name, description, domain_id, classification_type,
                                    target_export_platforms, settings)

    def _create_project(self, pid: str, status: str, name, description, domain_id, classification_type,
                        target_export_platforms, settings) -> Project:
        name = rules.check_name(name, "project", "BadRequestProjectName")
        description = rules.check_description(description, "project", "BadRequestProjectDescription")
        dom = self._domain_for(domain_id)
        ctype = rules.check_classification_type(classification_type or "Multiclass")
        platforms = self._platforms_for(dom, target_export_platforms)
        if settings is not None and not isinstance(settings, dict):
            raise CvlabError("BadRequestInvalid", "Project settings must be a dict.")
        now = _ts(_now())
        with self._tx() as c:
            n = c.execute("SELECT COUNT(*) FROM projects").fetchone()[0]
            rules.check_limit("projects", self.tier, n, 1)
            if c.execute("SELECT 1 FROM projects WHERE name = ?", (name,)).fetchone():
                raise CvlabError("BadRequestProjectNameNotUnique",
                                 f"A project called {name!r} already exists: choose another name, or open it with "
                                 f"ws.find_project({name!r}).")
            c.execute("INSERT INTO projects(id, name, description, domain_id, classification_type, project_type, "
                      "target_export_platforms, settings, status, created, last_modified) "
                      "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      (pid, name, description, dom.id, ctype, dom.type, json.dumps(platforms),
                       json.dumps(settings or {}), status, now, now))
        return self.get_project(pid)

    def get_projects(self) -> list[Project]:
        """Every project, oldest first.

        >>> [p.name for p in ws.get_projects()]      # doctest: +SKIP
        ['Parts (sample)', 'Site safety (sample)']
        """
        return [self._project(r) for r in self._q("SELECT * FROM projects ORDER BY created, rowid")]

    def get_project(self, project_id: str) -> Project:
        """A project by id (a Project works too); ``NotFoundProject`` when there is none."""
        pid = _guid(getattr(project_id, "id", project_id), "Project id")
        row = self._q1("SELECT * FROM projects WHERE id = ?", (pid,))
        if row is None:
            raise CvlabError("NotFoundProject", f"Project {pid} does not exist: list projects with "
                                                "ws.get_projects() and use one of their ids.")
        return self._project(row)

    def find_project(self, name: str) -> Project | None:
        """The project with this name (case-insensitive), or None."""
        row = self._q1("SELECT * FROM projects WHERE name = ?", (str(name).strip(),))
        return self._project(row) if row else None

    def resolve_project(self, name_or_id: Any) -> Project:
        """A project given a Project, its id or its name (case-insensitive): an id first, then a name (what
        every command's ``--project`` and the widgets accept).

        >>> ws.resolve_project("Parts").id == ws.resolve_project(parts.id).id      # doctest: +SKIP
        True
        """
        key = str(getattr(name_or_id, "id", name_or_id)).strip()
        if _is_guid(key):
            row = self._q1("SELECT * FROM projects WHERE id = ?", (key.lower(),))
            if row is not None:
                return self._project(row)
        found = self.find_project(key)
        if found is None:
            names = ", ".join(repr(p.name) for p in self.get_projects()) or "none yet"
            raise CvlabError("NotFoundProject", f"There is no project named {key!r}, nor one with that id "
                                                f"(projects: {names}). Use one of those names or ids.")
        return found

    def update_project(self, project_id: str, *, name: str | None = None, description: str | None = None,
                       domain_id: str | None = None, classification_type: str | None = None,
                       target_export_platforms: Any = None, settings: dict | None = None) -> Project:
        """Change name/description/domain (same project type only)/classification type/export platforms/settings."""
        p = self.get_project(project_id)
        new_name = rules.check_name(name, "project", "BadRequestProjectName") if name is not None else p.name
        new_desc = (rules.check_description(description, "project", "BadRequestProjectDescription")
                    if description is not None else p.description)
        dom = self._domain_for(domain_id) if domain_id is not None else get_domain(p.domain_id)
        if dom.type != p.project_type:
            raise CvlabError("BadRequestProjectUnsupportedDomainTypeChange",
                             f"Project {p.name!r} is {p.project_type}; it cannot switch to the {dom.type} domain "
                             f"{dom.name!r}. Pick a {p.project_type} domain, or create a new project.")
        ctype = (rules.check_classification_type(classification_type) if classification_type is not None
                 else p.classification_type)
        if target_export_platforms is not None:
            platforms = self._platforms_for(dom, target_export_platforms)
        else:  # keep the ones the new domain still supports
            platforms = [x for x in p.target_export_platforms if x in dom.exportable_platforms]
        new_settings = dict(p.settings)
        if settings is not None:
            if not isinstance(settings, dict):
                raise CvlabError("BadRequestInvalid", "Project settings must be a dict.")
            new_settings.update(settings)
        with self._tx() as c:
            clash = c.execute("SELECT 1 FROM projects WHERE name = ? AND id != ?", (new_name, p.id)).fetchone()
            if clash:
                raise CvlabError("BadRequestProjectNameNotUnique",
                                 f"Another project is already called {new_name!r}: choose another name.")
            c.execute("UPDATE projects SET name=?, description=?, domain_id=?, classification_type=?, "
                      "target_export_platforms=?, settings=?, last_modified=? WHERE id=?",
                      (new_name, new_desc, dom.id, ctype, json.dumps(platforms), json.dumps(new_settings),
                       _ts(_now()), p.id))
        return self.get_project(p.id)

    @uses_reserve
    def delete_project(self, project_id: str) -> None:
        """Delete a project with its tags, images, labels, iterations, predictions and exports: their zips too,
        so their download links stop working at once. Works on a full disk (it is how space is freed)."""
        p = self.get_project(project_id)
        it_ids = [r[0] for r in self._q("SELECT id FROM iterations WHERE project_id = ?", (p.id,))]
        export_files = self._export_files("project_id = ?", (p.id,))
        shas = [r[0] for r in self._q("SELECT sha256 FROM images WHERE project_id = ? UNION "
                                      "SELECT sha256 FROM predictions WHERE project_id = ?", (p.id, p.id))]
        with self._tx() as c:
            c.execute("DELETE FROM projects WHERE id = ?", (p.id,))
        for i in it_ids:
            shutil.rmtree(self.path / "iterations" / i, ignore_errors=True)
        self._delete_files(export_files)
        self._gc_blobs(shas)

    def copy_project(self, source_id: str, name: str | None = None) -> Project:
        """A new project holding the source's tags, images, labels and metadata (not its iterations): what
        Azure's ``import_project`` makes. All or nothing: the copy is ``Importing`` (Azure's ProjectStatus) until
        it is complete and is deleted if the copy fails. A copy whose process died midway (SIGKILL) stays
        Importing with no live job: ``check()`` reports it, start-up recovery deletes it, and an import under
        the same name replaces it instead of being refused as a duplicate name."""
        from .images_create import ImageEntry

        src = self.get_project(source_id)
        name = rules.check_name(name or src.name, "project", "BadRequestProjectName")
        left = self.find_project(name)
        if left is not None and left.status == "Importing" and not self.job_running(left.id):
            self.delete_project(left.id)  # a copy interrupted midway: only ever a partial duplicate
            self.forget_lease(left.id)
        pid = _new_id()
        with self.job_lease(pid):
            dst = self._create_project(pid, "Importing", name, src.description, src.domain_id,
                                       src.classification_type, src.target_export_platforms, None)
            try:
                tag_map = {t.id: self.create_tag(dst.id, t.name, t.description, t.type).id
                           for t in self.get_tags(src.id)}
                batch, page = rules.limit("images_per_batch"), []
                for im in self.iter_images(src.id):
                    page.append(im)
                    if len(page) == batch:
                        self._copy_images(dst.id, page, tag_map, ImageEntry)
                        page = []
                if page:
                    self._copy_images(dst.id, page, tag_map, ImageEntry)
                with self._tx() as c:
                    c.execute("UPDATE projects SET status = 'Succeeded', last_modified = ? WHERE id = ?",
                              (_ts(_now()), dst.id))
            except BaseException:
                self.delete_project(dst.id)  # nothing half-imported is left behind
                raise
        return self.get_project(dst.id)

    def _copy_images(self, project_id: str, images: list, tag_map: dict, entry) -> None:
        entries = [entry(data=self.read_image_bytes(im), name=im.original_name,
                         tag_ids=[tag_map[t.tag_id] for t in im.tags],
                         regions=[{"tag_id": tag_map[r.tag_id], "left": r.left, "top": r.top, "width": r.width,
                                   "height": r.height} for r in im.regions]) for im in images]
        summary = self.create_images(project_id, entries)
        for im, res in zip(images, summary.images):
            if res.image is None:
                raise CvlabError("ErrorProjectImportRequestFailed", f"Image {im.id} could not be copied: "
                                 f"{res.status} {res.message or ''}".strip())
            if im.metadata:
                self.update_image_metadata(project_id, [res.image.id], im.metadata)

    def recover_interrupted_imports(self) -> list[str]:
        """Delete the copies an import left half-made when its process stopped (Importing, no live job):
        the source project is untouched, so importing again gives the whole copy. Call at start-up."""
        stuck = [r["id"] for r in self._q("SELECT id FROM projects WHERE status = 'Importing'")
                 if not self.job_running(r["id"])]
        for pid in stuck:
            self.delete_project(pid)
            self.forget_lease(pid)
        return stuck

"""The Workspace: the single source of truth for everything a learner makes.

A folder with `cvlab.db` (SQLite: WAL, foreign keys, `PRAGMA user_version` + migrations), a content-addressed
image store `blobs/<sha[:2]>/<sha256>`, `iterations/<id>/` for model artefacts and `exports/<id>/`.

Crash safety: a blob is written to `blobs/tmp/`, fsynced and atomically renamed *before* the row that references
it is committed; blobs are only deleted after the rows are gone. So a crash leaves at worst an orphan blob or a
temp file, which `check()` reports and `check(repair=True)` removes. Blob deletion and row insertion both happen
under SQLite's write lock, so they cannot race, even across processes.
A stored prediction's image (Azure's Predictions tab: a 30-day log, not the learner's data) is renamed into place
the same way but not fsynced, as its row is not (WAL with synchronous=NORMAL): a power cut may lose the last
seconds of stored predictions, and `check(repair=True)` then drops a row whose image was lost. That fsync was
~2 ms of every stored prediction (benchmarks/serve.py). (The REST service also writes a stored prediction just
after answering, so a server killed in that millisecond loses it: cvlab.service.context.DeferredStores.)

Thread safety: one sqlite3 connection per thread (threading.local), `busy_timeout`, short write transactions.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, fields as dc_fields, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from . import rules
from .domains import default_domain, get_domain
from .errors import CvlabError
from .images import ImageInfo, batch_status, inspect_image, load_rgb, sha256_bytes
from .model import (Export, Image, ImageCreateResult, ImageCreateSummary, ImageRegion, ImageTag, Iteration, Project,
                    StoredPrediction, Tag)

DB_NAME = "cvlab.db"
EXPIRY_INTERVAL_S = 60.0  # stored predictions past retention are swept at most this often (a table scan)
SCHEMA_VERSION = 1
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}

# Migrations: version -> SQL run inside one transaction. Append, never edit a released one.
MIGRATIONS: dict[int, str] = {1: """
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE projects (
  id TEXT PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE UNIQUE, description TEXT NOT NULL DEFAULT '',
  domain_id TEXT NOT NULL, classification_type TEXT NOT NULL, project_type TEXT NOT NULL,
  target_export_platforms TEXT NOT NULL DEFAULT '[]', settings TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL DEFAULT 'Succeeded', iteration_counter INTEGER NOT NULL DEFAULT 0,
  created TEXT NOT NULL, last_modified TEXT NOT NULL);
CREATE TABLE tags (
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL COLLATE NOCASE, description TEXT NOT NULL DEFAULT '', type TEXT NOT NULL,
  created TEXT NOT NULL, UNIQUE (project_id, name));
CREATE TABLE images (
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  sha256 TEXT NOT NULL, original_name TEXT, width INTEGER NOT NULL, height INTEGER NOT NULL,
  format TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}', created TEXT NOT NULL,
  UNIQUE (project_id, sha256));
CREATE INDEX images_sha ON images(sha256);
CREATE TABLE image_tags (
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  tag_id TEXT NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
  created TEXT NOT NULL, PRIMARY KEY (image_id, tag_id));
CREATE INDEX image_tags_tag ON image_tags(tag_id);
CREATE TABLE regions (
  id TEXT PRIMARY KEY, image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  tag_id TEXT NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
  left REAL NOT NULL, top REAL NOT NULL, width REAL NOT NULL, height REAL NOT NULL, created TEXT NOT NULL);
CREATE INDEX regions_image ON regions(image_id);
CREATE INDEX regions_tag ON regions(tag_id);
CREATE TABLE iterations (
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL COLLATE NOCASE, status TEXT NOT NULL, created TEXT NOT NULL, last_modified TEXT NOT NULL,
  trained_at TEXT, domain_id TEXT, classification_type TEXT, training_type TEXT NOT NULL DEFAULT 'Regular',
  reserved_budget_in_hours INTEGER NOT NULL DEFAULT 0, training_time_in_minutes INTEGER NOT NULL DEFAULT 0,
  publish_name TEXT, original_publish_resource_id TEXT, exportable INTEGER NOT NULL DEFAULT 0,
  training_error_details TEXT, seed INTEGER NOT NULL DEFAULT 0, queue_position INTEGER,
  UNIQUE (project_id, name));
CREATE UNIQUE INDEX iterations_publish ON iterations(project_id, publish_name) WHERE publish_name IS NOT NULL;
CREATE TABLE predictions (
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  iteration_id TEXT, created TEXT NOT NULL, sha256 TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
  predictions TEXT NOT NULL, application TEXT, domain_id TEXT);
CREATE INDEX predictions_project ON predictions(project_id, created);
CREATE INDEX predictions_sha ON predictions(sha256);
CREATE TABLE exports (
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  iteration_id TEXT NOT NULL REFERENCES iterations(id) ON DELETE CASCADE,
  platform TEXT NOT NULL, flavor TEXT, status TEXT NOT NULL, download_uri TEXT NOT NULL DEFAULT '', path TEXT,
  created TEXT NOT NULL, last_modified TEXT NOT NULL, newer_version_available INTEGER NOT NULL DEFAULT 0, error TEXT);
CREATE TABLE quiz_results (
  id INTEGER PRIMARY KEY AUTOINCREMENT, quiz_id TEXT NOT NULL, question_id TEXT NOT NULL, answer TEXT,
  correct INTEGER NOT NULL, score REAL, created TEXT NOT NULL);
CREATE INDEX quiz_results_quiz ON quiz_results(quiz_id, question_id);
CREATE TABLE usage (month TEXT NOT NULL, kind TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (month, kind));
"""}


# ---- small helpers -------------------------------------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(timezone.utc)


def _ts(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _dt(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


def _new_id() -> str:
    return str(uuid.uuid4())


def check_application_name(application: Any) -> None:
    """Azure's rule for a stored prediction's ``application``: None, or text of at most 64 characters."""
    if application is not None and (not isinstance(application, str) or len(application) > 64):
        raise CvlabError("BadRequestPredictionInvalidApplicationName",
                         "The application name must be text of at most 64 characters.")


def _guid(value: Any, what: str) -> str:
    return rules.check_guid(value, what)


def _guids(values: Any, what: str) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    out: list[str] = []
    for v in values:
        g = _guid(getattr(v, "id", v), what)
        if g not in out:
            out.append(g)
    return out


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _marks(n: int) -> str:
    return ",".join("?" * n)


@dataclass(frozen=True)
class ImageEntry:
    """One image to create: its bytes, an optional name, its whole-image tags and its regions (dicts with
    tag_id, left, top, width, height, normalised 0..1)."""

    data: bytes
    name: str | None = None
    tag_ids: Sequence[str] = ()
    regions: Sequence[dict] = ()
    source_url: str | None = None


_ITERATION_FIELDS = {f.name for f in dc_fields(Iteration)} - {"id", "project_id"}
_EXPORT_UPDATABLE = {"status", "download_uri", "path", "newer_version_available", "error"}


class Workspace:
    """A folder holding projects, tags, images, labels, iterations, predictions, exports, quiz results, settings."""

    def __init__(self, path: str | os.PathLike, create: bool = True, busy_timeout: float = 30.0):
        self.path = Path(path).expanduser().resolve()
        self._last_expiry = float("-inf")
        self.busy_timeout = float(busy_timeout)  # seconds a write waits for another writer before giving up
        if not (self.path / DB_NAME).exists() and not create:
            raise CvlabError("NotFound", f"No workspace at {self.path} (no {DB_NAME}). Create it with "
                                         "cvlab.Workspace(path) or `cvlab lab`.")
        if self.path.exists() and not self.path.is_dir():
            raise CvlabError("BadRequestInvalid", f"{self.path} is a file; a workspace is a folder.")
        for sub in ("blobs/tmp", "iterations", "exports"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conns: list[tuple[weakref.ref, sqlite3.Connection]] = []  # (owning thread, connection)
        self._conns_lock = threading.Lock()
        self._migrate()

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    def __reduce__(self):
        """Pickle as a handle to the folder (a Project carries its workspace into a worker process)."""
        return (Workspace, (str(self.path),))

    def __deepcopy__(self, memo) -> "Workspace":
        return self  # a handle, not a value: copies of a Project share their workspace

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- connections and transactions -------------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    @property
    def blobs_dir(self) -> Path:
        return self.path / "blobs"

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            with self._conns_lock:
                alive = []
                for owner, c in self._conns:  # close connections of finished threads (training jobs come and go)
                    thread = owner()
                    if thread is None or not thread.is_alive():
                        with contextlib.suppress(Exception):
                            c.close()
                    else:
                        alive.append((owner, c))
                self._conns = alive + [(weakref.ref(threading.current_thread()), conn)]
        return conn

    def close(self) -> None:
        """Close every connection this workspace opened (any thread). The object reopens on next use."""
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for _, c in conns:
            with contextlib.suppress(Exception):
                c.close()
        self._local = threading.local()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction (BEGIN IMMEDIATE takes the write lock up front); nests as a no-op."""
        conn = self._conn()
        if conn.in_transaction:
            yield conn
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise CvlabError("Conflict", f"The workspace {self.path} stayed busy for {self.busy_timeout:g} s "
                                             "(another process is writing to it): try again, or stop the other "
                                             "cvlab process.") from None
            raise
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and _disk_full(exc):
                raise self._storage_error(exc) from None
            raise

    def _storage_error(self, exc: BaseException) -> CvlabError:
        """The disk holding the workspace is full (or refuses writes): 507, nothing of the step was stored."""
        return CvlabError("ErrorUnknown", f"Could not write to the workspace at {self.path} ({exc}): the disk is "
                                          "full or read-only. Free some space and try again; nothing of this step "
                                          "was stored.", status=507)

    def _q(self, sql: str, args: Sequence = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, tuple(args)).fetchall()

    def _q1(self, sql: str, args: Sequence = ()) -> sqlite3.Row | None:
        return self._conn().execute(sql, tuple(args)).fetchone()

    @property
    def schema_version(self) -> int:
        return self._q1("PRAGMA user_version")[0]

    def _migrate(self) -> None:
        try:
            conn = self._conn()
            self._migrate_on(conn)
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
                raise
            self.close()
            raise CvlabError("ErrorUnknown", f"{self.db_path} is not a readable cvlab database ({e}). Restore it from "
                                             "a backup, or move it away to start a fresh workspace here.") from None

    def _migrate_on(self, conn: sqlite3.Connection) -> None:
        with self._tx():
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise CvlabError("BadRequestNotSupported",
                                 f"The workspace at {self.path} has schema version {version}, newer than this "
                                 f"cvlab ({SCHEMA_VERSION}). Upgrade cvlab.")
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS[v].split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {v}")

    # ---- settings, tier and usage -----------------------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        row = self._q1("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(row["value"]) if row else default

    def set_setting(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key:
            raise CvlabError("BadRequestInvalid", "A setting key must be non-empty text.")
        try:
            text = json.dumps(value)
        except TypeError as e:
            raise CvlabError("BadRequestInvalid", f"Setting {key!r} must be JSON-serialisable: {e}.") from None
        with self._tx() as c:
            c.execute("INSERT INTO settings(key, value) VALUES (?, ?) "
                      "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, text))

    def delete_setting(self, key: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM settings WHERE key = ?", (key,))

    @property
    def tier(self) -> str:
        return self.get_setting("tier", "S0")

    def set_tier(self, tier: str) -> None:
        """F0 (free) or S0 (standard): the limits of rules.LIMITS that apply from now on."""
        self.set_setting("tier", rules.check_tier(tier))

    def add_usage(self, kind: str, n: int = 1, when: datetime | None = None) -> int:
        """Count `n` uses of `kind` (e.g. "predictions") in the current UTC month; returns the month's total."""
        month = (when or _now()).strftime("%Y-%m")
        with self._tx() as c:
            c.execute("INSERT INTO usage(month, kind, count) VALUES (?, ?, ?) "
                      "ON CONFLICT(month, kind) DO UPDATE SET count = count + excluded.count", (month, kind, n))
            return c.execute("SELECT count FROM usage WHERE month = ? AND kind = ?", (month, kind)).fetchone()[0]

    def get_usage(self, kind: str, month: str | None = None) -> int:
        month = month or _now().strftime("%Y-%m")
        row = self._q1("SELECT count FROM usage WHERE month = ? AND kind = ?", (month, kind))
        return row[0] if row else 0

    def check_prediction_quota(self, n: int = 1) -> None:
        """Raise BadRequestExceededQuota when `n` more predictions would pass this month's limit for the tier."""
        rules.check_limit("predictions_per_month", self.tier, self.get_usage("predictions"), n)

    # ---- projects -----------------------------------------------------------------------------------------------
    def _project(self, row: sqlite3.Row) -> Project:
        return Project(id=row["id"], name=row["name"], description=row["description"], domain_id=row["domain_id"],
                       classification_type=row["classification_type"], project_type=row["project_type"],
                       target_export_platforms=json.loads(row["target_export_platforms"]),
                       settings=json.loads(row["settings"]), created=_dt(row["created"]),
                       last_modified=_dt(row["last_modified"]), status=row["status"])._bind(self)

    @staticmethod
    def get_domains():
        """Azure's domain catalogue (cvlab.domains), as trainer.get_domains() returns it."""
        from .domains import get_domains
        return get_domains()

    @staticmethod
    def get_domain(domain_id: str):
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
        name = rules.check_name(name, "project", "BadRequestProjectName")
        description = rules.check_description(description, "project", "BadRequestProjectDescription")
        dom = self._domain_for(domain_id)
        ctype = rules.check_classification_type(classification_type or "Multiclass")
        platforms = self._platforms_for(dom, target_export_platforms)
        if settings is not None and not isinstance(settings, dict):
            raise CvlabError("BadRequestInvalid", "Project settings must be a dict.")
        now = _ts(_now())
        pid = _new_id()
        with self._tx() as c:
            n = c.execute("SELECT COUNT(*) FROM projects").fetchone()[0]
            rules.check_limit("projects", self.tier, n, 1)
            if c.execute("SELECT 1 FROM projects WHERE name = ?", (name,)).fetchone():
                raise CvlabError("BadRequestProjectNameNotUnique",
                                 f"A project called {name!r} already exists: choose another name, or open it with "
                                 f"ws.find_project({name!r}).")
            c.execute("INSERT INTO projects(id, name, description, domain_id, classification_type, project_type, "
                      "target_export_platforms, settings, created, last_modified) VALUES (?,?,?,?,?,?,?,?,?,?)",
                      (pid, name, description, dom.id, ctype, dom.type, json.dumps(platforms),
                       json.dumps(settings or {}), now, now))
        return self.get_project(pid)

    def get_projects(self) -> list[Project]:
        return [self._project(r) for r in self._q("SELECT * FROM projects ORDER BY created, rowid")]

    def get_project(self, project_id: str) -> Project:
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

    def delete_project(self, project_id: str) -> None:
        """Delete a project with its tags, images, labels, iterations, predictions and exports."""
        p = self.get_project(project_id)
        it_ids = [r[0] for r in self._q("SELECT id FROM iterations WHERE project_id = ?", (p.id,))]
        ex_ids = [r[0] for r in self._q("SELECT id FROM exports WHERE project_id = ?", (p.id,))]
        shas = [r[0] for r in self._q("SELECT sha256 FROM images WHERE project_id = ? UNION "
                                      "SELECT sha256 FROM predictions WHERE project_id = ?", (p.id, p.id))]
        with self._tx() as c:
            c.execute("DELETE FROM projects WHERE id = ?", (p.id,))
        for i in it_ids:
            shutil.rmtree(self.path / "iterations" / i, ignore_errors=True)
        for e in ex_ids:
            shutil.rmtree(self.path / "exports" / e, ignore_errors=True)
        self._gc_blobs(shas)

    # ---- tags ---------------------------------------------------------------------------------------------------
    _TAG_SQL = ("SELECT t.*, (SELECT COUNT(*) FROM (SELECT image_id FROM image_tags WHERE tag_id = t.id UNION "
                "SELECT image_id FROM regions WHERE tag_id = t.id)) AS image_count FROM tags t ")

    @staticmethod
    def _tag(row: sqlite3.Row) -> Tag:
        return Tag(id=row["id"], project_id=row["project_id"], name=row["name"], description=row["description"],
                   type=row["type"], image_count=row["image_count"])

    def create_tag(self, project_id: str, name: str, description: str = "", type: str = "Regular") -> Tag:
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
        p = self.get_project(project_id)
        return [self._tag(r) for r in self._q(self._TAG_SQL + "WHERE t.project_id = ? ORDER BY t.rowid", (p.id,))]

    def get_tag(self, project_id: str, tag_id: str) -> Tag:
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

    # ---- blobs --------------------------------------------------------------------------------------------------
    def blob_path(self, sha256: str) -> Path:
        return self.blobs_dir / sha256[:2] / sha256

    def _write_blob(self, sha: str, data: bytes, durable: bool = True) -> Path:
        """Write one blob (see _write_blobs)."""
        self._write_blobs([(sha, data)], durable=durable)
        return self.blob_path(sha)

    def _write_blobs(self, items: Iterable[tuple[str, bytes]], raise_errors: bool = True,
                     durable: bool = True) -> dict[str, OSError]:
        """Write blobs durably: temp file + fsync + atomic rename each, then one fsync per touched folder
        (``durable=False``: no fsyncs, for stored predictions; see the module docstring).

        Content-addressed, so idempotent: an existing blob of the right size is kept (check() re-hashes).
        Returns {sha: error} for blobs that could not be written (disk full...) when not `raise_errors`."""
        dirs: set[Path] = set()
        failed: dict[str, OSError] = {}
        for sha, data in items:
            final = self.blob_path(sha)
            tmp = self.blobs_dir / "tmp" / f"{sha}.{uuid.uuid4().hex}.part"
            try:
                if final.exists() and final.stat().st_size == len(data):
                    if durable:  # it may be a stored prediction's un-fsynced image, now becoming training data
                        _fsync_file(final)
                        dirs.add(final.parent)
                    continue
                final.parent.mkdir(parents=True, exist_ok=True)
                with open(tmp, "wb") as f:
                    f.write(data)
                    if durable:
                        f.flush()
                        os.fsync(f.fileno())
                os.replace(tmp, final)
                dirs.add(final.parent)
            except OSError as e:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                if raise_errors:
                    raise
                failed[sha] = e
        for d in dirs if durable else ():
            _fsync_dir(d)
        return failed

    def _gc_blobs(self, shas: Iterable[str]) -> None:
        """Delete blobs no row references any more (under the write lock, so no insert can race with it)."""
        shas = list(dict.fromkeys(shas))
        if not shas:
            return
        with self._tx() as c:
            for sha in shas:
                used = c.execute("SELECT 1 FROM images WHERE sha256 = ? UNION ALL "
                                 "SELECT 1 FROM predictions WHERE sha256 = ? LIMIT 1", (sha, sha)).fetchone()
                if not used:
                    with contextlib.suppress(FileNotFoundError):
                        self.blob_path(sha).unlink()

    # ---- images: reading ----------------------------------------------------------------------------------------
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
                      tags=tags[r["id"]], regions=regions[r["id"]], metadata=json.loads(r["metadata"]))
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
        p = self.get_project(project_id)
        where, args = self._filters(p.id, tagging_status, _guids(tag_ids, "Tag id"), [], filter)
        return self._q1(f"SELECT COUNT(*) FROM images i WHERE {where}", args)[0]

    def get_image(self, project_id: str, image_id: str) -> Image:
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
        return self.image_path(image).read_bytes()

    def open_image(self, image: Image):
        """The image as an EXIF-oriented RGB PIL image."""
        return load_rgb(self.image_path(image))

    # ---- images: creating ---------------------------------------------------------------------------------------
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
                          (iid, p.id, info.sha256, e.name, info.width, info.height, info.format,
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

    # ---- images: deleting and labelling -------------------------------------------------------------------------
    def _existing_image_ids(self, project_id: str, image_ids: list[str]) -> None:
        found = {r[0] for r in self._q(f"SELECT id FROM images WHERE project_id = ? AND id IN "
                                       f"({_marks(len(image_ids))})", [project_id] + image_ids)}
        missing = [i for i in image_ids if i not in found]
        if missing:
            raise CvlabError("NotFoundImage", f"{len(missing)} image id(s) do not exist in this project "
                                              f"(first: {missing[0]}); nothing was changed.")

    def delete_images(self, project_id: str, image_ids: Any = None, all_images: bool = False) -> int:
        """Delete images (by id, at most 256, or all); returns how many were deleted. Blobs no longer used go."""
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
                cur = json.loads(c.execute("SELECT metadata FROM images WHERE id = ?", (iid,)).fetchone()[0])
                cur.update(meta)
                rules.check_metadata(cur)
                c.execute("UPDATE images SET metadata = ? WHERE id = ?", (json.dumps(cur), iid))
        return self.get_images(p.id, image_ids=ids, take=rules.limit("take")) if ids else []

    # ---- iterations ---------------------------------------------------------------------------------------------
    @staticmethod
    def _iteration(row: sqlite3.Row) -> Iteration:
        d = dict(row)
        for k in ("created", "last_modified", "trained_at"):
            d[k] = _dt(d[k])
        d["exportable"] = bool(d["exportable"])
        return Iteration(**d)

    def _iter_values(self, fields: dict) -> dict:
        unknown = set(fields) - _ITERATION_FIELDS
        if unknown:
            raise CvlabError("BadRequestInvalid", f"Unknown iteration field(s) {sorted(unknown)}; known: "
                                                  f"{sorted(_ITERATION_FIELDS)}.")
        out = {}
        for k, v in fields.items():
            if k == "name":
                v = rules.check_name(v, "iteration", "BadRequestIterationName")
            elif k == "status":
                rules.check_choice(v, rules.ITERATION_STATUSES, "Iteration status", "BadRequestInvalid")
            elif k == "training_type":
                rules.check_choice(v, rules.TRAINING_TYPES, "Training type", "BadRequestInvalid")
            elif k == "classification_type" and v is not None:
                rules.check_classification_type(v)
            elif k == "domain_id" and v is not None:
                v = get_domain(v).id
            elif k in ("created", "last_modified", "trained_at"):
                v = _ts(v)
            elif k == "exportable":
                v = int(bool(v))
            out[k] = v
        return out

    def create_iteration(self, project_id: str, **fields) -> Iteration:
        """A new iteration in status Training ("Iteration N"); the project's domain and classification by default."""
        p = self.get_project(project_id)
        vals = self._iter_values(fields)
        now = _ts(_now())
        iid = _new_id()
        dom = get_domain(vals.get("domain_id") or p.domain_id)
        with self._tx() as c:
            n = c.execute("SELECT COUNT(*) FROM iterations WHERE project_id = ?", (p.id,)).fetchone()[0]
            rules.check_limit("iterations_per_project", self.tier, n, 1)
            counter = c.execute("SELECT iteration_counter FROM projects WHERE id = ?", (p.id,)).fetchone()[0] + 1
            c.execute("UPDATE projects SET iteration_counter = ? WHERE id = ?", (counter, p.id))
            row = {"id": iid, "project_id": p.id, "name": f"Iteration {counter}", "status": "Training",
                   "created": now, "last_modified": now, "domain_id": dom.id,
                   "classification_type": p.classification_type if p.project_type == "Classification" else None,
                   "exportable": int(dom.exportable), **vals}
            self._check_iteration_name(c, p.id, iid, row["name"])
            cols = ", ".join(row)
            c.execute(f"INSERT INTO iterations({cols}) VALUES ({_marks(len(row))})", list(row.values()))
        return self.get_iteration(p.id, iid)

    @staticmethod
    def _check_iteration_name(c, project_id, iteration_id, name) -> None:
        if c.execute("SELECT 1 FROM iterations WHERE project_id = ? AND name = ? AND id != ?",
                     (project_id, name, iteration_id)).fetchone():
            raise CvlabError("BadRequestIterationNameNotUnique",
                             f"Another iteration is already called {name!r}: choose another name.")

    def get_iterations(self, project_id: str) -> list[Iteration]:
        p = self.get_project(project_id)
        return [self._iteration(r) for r in
                self._q("SELECT * FROM iterations WHERE project_id = ? ORDER BY created, rowid", (p.id,))]

    def get_iteration(self, project_id: str, iteration_id: str) -> Iteration:
        p = self.get_project(project_id)
        iid = _guid(getattr(iteration_id, "id", iteration_id), "Iteration id")
        row = self._q1("SELECT * FROM iterations WHERE project_id = ? AND id = ?", (p.id, iid))
        if row is None:
            raise CvlabError("NotFoundIteration", f"Iteration {iid} does not exist in project {p.name!r}: list them "
                                                  "with ws.get_iterations(project_id).")
        return self._iteration(row)

    def update_iteration(self, project_id: str, iteration_id: str, **fields) -> Iteration:
        """Update fields (training writes status, trained_at, timings, errors; learners rename)."""
        it = self.get_iteration(project_id, iteration_id)
        vals = self._iter_values(fields)
        if not vals:
            return it
        vals.setdefault("last_modified", _ts(_now()))
        with self._tx() as c:
            if "name" in vals:
                self._check_iteration_name(c, it.project_id, it.id, vals["name"])
            sets = ", ".join(f"{k} = ?" for k in vals)
            c.execute(f"UPDATE iterations SET {sets} WHERE id = ?", list(vals.values()) + [it.id])
        return self.get_iteration(it.project_id, it.id)

    def delete_iteration(self, project_id: str, iteration_id: str) -> None:
        it = self.get_iteration(project_id, iteration_id)
        if it.publish_name:
            raise CvlabError("BadRequestIterationIsPublished",
                             f"{it.name} is published as {it.publish_name!r}: unpublish it first.")
        ex_ids = [r[0] for r in self._q("SELECT id FROM exports WHERE iteration_id = ?", (it.id,))]
        with self._tx() as c:
            c.execute("DELETE FROM iterations WHERE id = ?", (it.id,))
        shutil.rmtree(self.path / "iterations" / it.id, ignore_errors=True)
        for e in ex_ids:
            shutil.rmtree(self.path / "exports" / e, ignore_errors=True)

    def iteration_dir(self, iteration_id: str) -> Path:
        """Folder for an iteration's artefacts (model.pt, iteration.json, evaluation.json); created on demand."""
        d = self.path / "iterations" / _guid(getattr(iteration_id, "id", iteration_id), "Iteration id")
        d.mkdir(parents=True, exist_ok=True)
        return d

    def publish_iteration(self, project_id: str, iteration_id: str, publish_name: str, prediction_id: str,
                          overwrite: bool = False) -> Iteration:
        """Publish a Completed iteration under a name the prediction API uses."""
        it = self.get_iteration(project_id, iteration_id)
        if it.status != "Completed":
            raise CvlabError("BadRequestIterationIsNotTrained",
                             f"{it.name} is {it.status}; only a Completed iteration can be published.")
        if not isinstance(publish_name, str) or not publish_name.strip() or len(publish_name) > 256 or \
                any(ch in publish_name for ch in "/\\?#%&\x00") or publish_name != publish_name.strip():
            raise CvlabError("BadRequestInvalidPublishName",
                             f"Publish name {publish_name!r} is not valid: use a short name without spaces at the "
                             "ends or the characters / \\ ? # % &, e.g. 'Iteration1' or 'detectModel'.")
        if not isinstance(prediction_id, str) or not prediction_id.strip():
            raise CvlabError("BadRequestInvalidPublishTarget",
                             "prediction_id (the prediction resource id) is required: it looks like "
                             "/subscriptions/.../providers/Microsoft.CognitiveServices/accounts/<name>.")
        with self._tx() as c:
            other = c.execute("SELECT id, name FROM iterations WHERE project_id = ? AND publish_name = ? AND id != ?",
                              (it.project_id, publish_name, it.id)).fetchone()
            if other and not overwrite:
                raise CvlabError("BadRequestInvalidPublishName",
                                 f"{other['name']} is already published as {publish_name!r}: unpublish it, choose "
                                 "another name, or pass overwrite=True.")
            if other:
                c.execute("UPDATE iterations SET publish_name = NULL, original_publish_resource_id = NULL, "
                          "last_modified = ? WHERE id = ?", (_ts(_now()), other["id"]))
            c.execute("UPDATE iterations SET publish_name = ?, original_publish_resource_id = ?, last_modified = ? "
                      "WHERE id = ?", (publish_name, prediction_id, _ts(_now()), it.id))
        return self.get_iteration(it.project_id, it.id)

    def unpublish_iteration(self, project_id: str, iteration_id: str) -> Iteration:
        it = self.get_iteration(project_id, iteration_id)
        if not it.publish_name:
            raise CvlabError("BadRequestIterationNotPublished", f"{it.name} is not published.")
        with self._tx() as c:
            c.execute("UPDATE iterations SET publish_name = NULL, original_publish_resource_id = NULL, "
                      "last_modified = ? WHERE id = ?", (_ts(_now()), it.id))
        return self.get_iteration(it.project_id, it.id)

    def find_published(self, project_id: str, publish_name: str) -> Iteration | None:
        """The iteration of a project published under `publish_name`, or None."""
        p = self.get_project(project_id)
        row = self._q1("SELECT * FROM iterations WHERE project_id = ? AND publish_name = ?", (p.id, publish_name))
        return self._iteration(row) if row else None

    # ---- predictions --------------------------------------------------------------------------------------------
    @staticmethod
    def _prediction(row: sqlite3.Row) -> StoredPrediction:
        return StoredPrediction(id=row["id"], project_id=row["project_id"], iteration_id=row["iteration_id"],
                                created=_dt(row["created"]), sha256=row["sha256"], width=row["width"],
                                height=row["height"], predictions=json.loads(row["predictions"]),
                                application=row["application"], domain_id=row["domain_id"])

    def store_prediction(self, project_id: str, iteration_id: str | None, image_bytes: bytes,
                         predictions: list[dict], application: str | None = None,
                         info: ImageInfo | None = None, prediction_id: str | None = None,
                         created: datetime | None = None) -> StoredPrediction:
        """Keep a prediction (quick test / prediction with storage) with its image, like Azure's Predictions tab.

        ``info``: the ``ImageInfo`` the caller got when it checked these very bytes (skips a second decode).
        ``prediction_id`` / ``created``: the id and time already sent to the client (the service answers before
        it stores, see ``cvlab.service.context.DeferredStores``)."""
        p = self.get_project(project_id)
        it = self.get_iteration(p.id, iteration_id) if iteration_id is not None else None
        if info is None or info.n_bytes != len(image_bytes):
            info = inspect_image(image_bytes, "prediction")
        elif not info.sha256:  # checked by the caller but not hashed (the service hashes after answering)
            info = replace(info, sha256=sha256_bytes(image_bytes))
        check_application_name(application)
        try:
            preds = json.loads(json.dumps(predictions, default=str))
        except (TypeError, ValueError) as e:
            raise CvlabError("BadRequestInvalid", f"Predictions must be JSON-like dicts: {e}.") from None
        self._write_blob(info.sha256, bytes(image_bytes), durable=False)
        pid = prediction_id or _new_id()
        with self._tx() as c:
            if not self.blob_path(info.sha256).exists():  # a concurrent expiry collected it meanwhile
                self._write_blob(info.sha256, bytes(image_bytes), durable=False)
            c.execute("INSERT INTO predictions(id, project_id, iteration_id, created, sha256, width, height, "
                      "predictions, application, domain_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
                      (pid, p.id, it.id if it else None, _ts(created or _now()), info.sha256, info.width, info.height,
                       json.dumps(preds), application, it.domain_id if it else p.domain_id))
        if time.monotonic() - self._last_expiry > EXPIRY_INTERVAL_S:  # a table scan: not on every prediction
            self._last_expiry = time.monotonic()
            self.expire_predictions()
        return self._prediction(self._q1("SELECT * FROM predictions WHERE id = ?", (pid,)))

    def expire_predictions(self, now: datetime | None = None) -> int:
        """Delete stored predictions older than Azure's retention (30 days, rules.LIMITS["prediction_storage_days"]).

        Called on every store_prediction, as Azure expires them on its own; training images are never touched."""
        cutoff = (now or _now()) - timedelta(days=rules.limit("prediction_storage_days", self.tier))
        shas = [r[0] for r in self._q("SELECT sha256 FROM predictions WHERE created < ?", (_ts(cutoff),))]
        if not shas:
            return 0
        with self._tx() as c:
            n = c.execute("DELETE FROM predictions WHERE created < ?", (_ts(cutoff),)).rowcount
        self._gc_blobs(shas)
        return n

    def query_predictions(self, project_id: str, *, iteration_id: str | None = None, tags: Any = None,
                          application: str | None = None, start_time: datetime | None = None,
                          end_time: datetime | None = None, order_by: str = "Newest", max_count: int = 50,
                          skip: int = 0) -> list[StoredPrediction]:
        """Stored predictions, newest first; `tags` = [{"id", "min_threshold", "max_threshold"}] (at most 2):
        keep predictions whose probability for each tag lies in the range."""
        p = self.get_project(project_id)
        tags = list(tags or [])
        rules.check_limit("tags_per_query", "S0", 0, len(tags), "tags combined in one prediction query")
        rules.check_choice(order_by, rules.ORDER_BY, "orderBy", "BadRequestPredictionInvalidQueryParameters")
        where, args = ["project_id = ?"], [p.id]
        if iteration_id is not None:
            where.append("iteration_id = ?")
            args.append(_guid(iteration_id, "Iteration id"))
        if application is not None:
            where.append("application = ?")
            args.append(application)
        if start_time is not None:
            where.append("created >= ?")
            args.append(_ts(start_time))
        if end_time is not None:
            where.append("created <= ?")
            args.append(_ts(end_time))
        direction = "DESC" if order_by == "Newest" else "ASC"
        rows = self._q(f"SELECT * FROM predictions WHERE {' AND '.join(where)} ORDER BY created {direction}, "
                       f"rowid {direction}", args)
        out = []
        for r in rows:
            sp = self._prediction(r)
            ok = True
            for t in tags:
                tid = _guid(t.get("id", t.get("tag_id")), "Tag id")
                lo, hi = t.get("min_threshold"), t.get("max_threshold")
                lo, hi = float(0.0 if lo is None else lo), float(1.0 if hi is None else hi)
                probs = [x.get("probability", 0.0) for x in sp.predictions if x.get("tag_id") == tid]
                if not any(lo <= pr <= hi for pr in probs):
                    ok = False
                    break
            if ok:
                out.append(sp)
        return out[skip:skip + max_count]

    def get_prediction(self, project_id: str, prediction_id: str) -> StoredPrediction:
        p = self.get_project(project_id)
        row = self._q1("SELECT * FROM predictions WHERE project_id = ? AND id = ?",
                       (p.id, _guid(prediction_id, "Prediction id")))
        if row is None:
            raise CvlabError("NotFound", f"Prediction {prediction_id} does not exist in project {p.name!r}.")
        return self._prediction(row)

    def delete_predictions(self, project_id: str, ids: Any) -> int:
        p = self.get_project(project_id)
        ids = _guids(ids, "Prediction id")
        if not ids:
            raise CvlabError("BadRequestPredictionIdsMissing", "Pass the ids of the predictions to delete.")
        if len(ids) > rules.limit("ids_per_delete"):
            raise CvlabError("BadRequestPredictionIdsExceededCount",
                             f"Delete at most {rules.limit('ids_per_delete')} predictions per call.")
        m = _marks(len(ids))
        shas = [r[0] for r in self._q(f"SELECT sha256 FROM predictions WHERE project_id = ? AND id IN ({m})",
                                      [p.id] + ids)]
        with self._tx() as c:
            n = c.execute(f"DELETE FROM predictions WHERE project_id = ? AND id IN ({m})", [p.id] + ids).rowcount
        self._gc_blobs(shas)
        return n

    # ---- exports ------------------------------------------------------------------------------------------------
    @staticmethod
    def _export(row: sqlite3.Row) -> Export:
        d = dict(row)
        d["created"], d["last_modified"] = _dt(d["created"]), _dt(d["last_modified"])
        d["newer_version_available"] = bool(d["newer_version_available"])
        return Export(**d)

    def create_export(self, project_id: str, iteration_id: str, platform: str, flavor: str | None = None) -> Export:
        """Record an export job (status Exporting); the exporter fills it in with update_export."""
        it = self.get_iteration(project_id, iteration_id)
        rules.check_export_flavor(platform, flavor)
        if it.status == "Training":
            raise CvlabError("BadRequestExportWhileTraining", f"{it.name} is still training: wait until it is "
                                                              "Completed, then export.")
        if it.status != "Completed":
            raise CvlabError("BadRequestIterationIsNotTrained", f"{it.name} is {it.status}: only a Completed "
                                                                "iteration can be exported.")
        dom = get_domain(it.domain_id) if it.domain_id else None
        if not it.exportable or dom is None or not dom.exportable:
            raise CvlabError("BadRequestExportValidationFailed",
                             f"{it.name} was trained on a non-compact domain; only compact domains export. Switch "
                             "the project to a '(compact)' domain and train again.")
        if platform not in dom.exportable_platforms:
            raise CvlabError("BadRequestExportValidationFailed",
                             f"Domain {dom.name!r} cannot export to {platform}: use one of "
                             f"{', '.join(dom.exportable_platforms)}.")
        now = _ts(_now())
        eid = _new_id()
        with self._tx() as c:
            running = c.execute("SELECT 1 FROM exports WHERE iteration_id = ? AND platform = ? AND flavor IS ? "
                                "AND status = 'Exporting'", (it.id, platform, flavor)).fetchone()
            if running:
                raise CvlabError("BadRequestExportAlreadyInProgress",
                                 f"An export of {it.name} to {platform}{'/' + flavor if flavor else ''} is already "
                                 "running: poll get_exports until it is Done.")
            c.execute("INSERT INTO exports(id, project_id, iteration_id, platform, flavor, status, created, "
                      "last_modified) VALUES (?,?,?,?,?,?,?,?)",
                      (eid, it.project_id, it.id, platform, flavor, "Exporting", now, now))
        return self.get_export(eid)

    def get_export(self, export_id: str) -> Export:
        row = self._q1("SELECT * FROM exports WHERE id = ?", (_guid(export_id, "Export id"),))
        if row is None:
            raise CvlabError("NotFound", f"Export {export_id} does not exist.")
        return self._export(row)

    def update_export(self, export_id: str, **fields) -> Export:
        """Set status ("Exporting"|"Failed"|"Done"), download_uri, path, newer_version_available or error."""
        ex = self.get_export(export_id)
        unknown = set(fields) - _EXPORT_UPDATABLE
        if unknown:
            raise CvlabError("BadRequestInvalid", f"Unknown export field(s) {sorted(unknown)}.")
        if "status" in fields:
            rules.check_choice(fields["status"], rules.EXPORT_STATUSES, "Export status", "BadRequestInvalid")
        if "newer_version_available" in fields:
            fields["newer_version_available"] = int(bool(fields["newer_version_available"]))
        if "path" in fields and fields["path"] is not None:
            fields["path"] = str(fields["path"])
        if not fields:
            return ex
        fields["last_modified"] = _ts(_now())
        with self._tx() as c:
            c.execute(f"UPDATE exports SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                      list(fields.values()) + [ex.id])
        return self.get_export(ex.id)

    def get_exports(self, project_id: str, iteration_id: str) -> list[Export]:
        it = self.get_iteration(project_id, iteration_id)
        return [self._export(r) for r in self._q("SELECT * FROM exports WHERE iteration_id = ? ORDER BY created, "
                                                 "rowid", (it.id,))]

    def recover_interrupted_exports(self, running: Iterable[str] = ()) -> list[str]:
        """Mark exports left in Exporting by a process that stopped (kill, crash, power cut) as Failed, saying why;
        `running` are ids this process is still building. Call at start-up, like training.recover_interrupted."""
        live = {str(i) for i in running}
        stuck = [r["id"] for r in self._q("SELECT id FROM exports WHERE status = 'Exporting'") if r["id"] not in live]
        for eid in stuck:
            self.update_export(eid, status="Failed", error="Interrupted: the process building this export stopped "
                                                           "before it finished. Export the iteration again.")
        return stuck

    def export_dir(self, export_id: str) -> Path:
        d = self.path / "exports" / _guid(export_id, "Export id")
        d.mkdir(parents=True, exist_ok=True)
        return d

    # ---- quiz results -------------------------------------------------------------------------------------------
    def record_quiz_result(self, quiz_id: str, question_id: str, answer: Any, correct: bool,
                           score: float | None = None) -> int:
        """Store one answer to a quiz question (answers are kept, the latest counts for progress)."""
        for v, what in ((quiz_id, "quiz id"), (question_id, "question id")):
            if not isinstance(v, str) or not v:
                raise CvlabError("BadRequestInvalid", f"The {what} must be non-empty text.")
        with self._tx() as c:
            cur = c.execute("INSERT INTO quiz_results(quiz_id, question_id, answer, correct, score, created) "
                            "VALUES (?,?,?,?,?,?)", (quiz_id, question_id, json.dumps(answer, default=str),
                                                     int(bool(correct)), score, _ts(_now())))
            return cur.lastrowid

    def get_quiz_results(self, quiz_id: str | None = None, latest_only: bool = False) -> list[dict]:
        sql, args = "SELECT * FROM quiz_results", []
        if quiz_id is not None:
            sql += " WHERE quiz_id = ?"
            args.append(quiz_id)
        rows = [dict(r, answer=json.loads(r["answer"]) if r["answer"] else None, correct=bool(r["correct"]),
                     created=_dt(r["created"])) for r in self._q(sql + " ORDER BY id", args)]
        if latest_only:
            latest = {}
            for r in rows:
                latest[(r["quiz_id"], r["question_id"])] = r
            rows = list(latest.values())
        return rows

    def delete_quiz_results(self, quiz_id: str | None = None) -> int:
        """Forget answers (of one quiz, or all) to start over."""
        with self._tx() as c:
            if quiz_id is None:
                return c.execute("DELETE FROM quiz_results").rowcount
            return c.execute("DELETE FROM quiz_results WHERE quiz_id = ?", (quiz_id,)).rowcount

    # ---- integrity ----------------------------------------------------------------------------------------------
    def check(self, repair: bool = False, verify_hashes: bool = True) -> dict:
        """Integrity report: SQLite integrity and foreign keys, rows whose blob is missing or corrupt, orphan blobs,
        leftover temp files. `repair=True` removes orphans and temp files, and the stored predictions whose image
        was lost (a power cut: their images are not fsynced); nothing else is safe to delete."""
        conn = self._conn()
        integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        fk = [tuple(r) for r in conn.execute("PRAGMA foreign_key_check")]
        referenced = {r[0] for r in self._q("SELECT sha256 FROM images UNION SELECT sha256 FROM predictions")}
        missing, corrupt = [], []
        for sha in sorted(referenced):
            path = self.blob_path(sha)
            if not path.exists():
                missing.append(sha)
            elif verify_hashes and _file_sha256(path) != sha:
                corrupt.append(sha)
        on_disk = {}
        for sub in self.blobs_dir.iterdir():
            if sub.is_dir() and sub.name != "tmp":
                for f in sub.iterdir():
                    on_disk[f.name] = f
        orphans = sorted(s for s in on_disk if s not in referenced)
        temps = sorted(f.name for f in (self.blobs_dir / "tmp").iterdir())
        # a killed export leaves its build folder exports/tmp*; while an export runs, its folder is not a leftover
        building = self._q1("SELECT 1 FROM exports WHERE status = 'Exporting' LIMIT 1") is not None
        export_temps = [] if building else sorted(d.name for d in (self.path / "exports").glob("tmp*") if d.is_dir())
        repaired = {"orphan_blobs": 0, "temp_files": 0, "lost_predictions": 0}
        training = {r[0] for r in self._q("SELECT sha256 FROM images")}
        lost = [s for s in missing if s not in training]  # only stored predictions refer to these
        if repair and lost:
            with self._tx() as c:
                for s in lost:
                    if not self.blob_path(s).exists():
                        repaired["lost_predictions"] += c.execute("DELETE FROM predictions WHERE sha256 = ?",
                                                                  (s,)).rowcount
            missing = [s for s in missing if s not in lost]
        if repair:
            with self._tx():  # under the write lock: no insert can be referencing an orphan right now
                for s in orphans:
                    still = self._q1("SELECT 1 FROM images WHERE sha256 = ? UNION ALL "
                                     "SELECT 1 FROM predictions WHERE sha256 = ? LIMIT 1", (s, s))
                    if not still:
                        with contextlib.suppress(FileNotFoundError):
                            on_disk[s].unlink()
                            repaired["orphan_blobs"] += 1
            for name in temps:
                with contextlib.suppress(FileNotFoundError):
                    (self.blobs_dir / "tmp" / name).unlink()
                    repaired["temp_files"] += 1
            for name in export_temps:
                shutil.rmtree(self.path / "exports" / name, ignore_errors=True)
                repaired["temp_files"] += 1
        counts = {t: self._q1(f"SELECT COUNT(*) FROM {t}")[0] for t in
                  ("projects", "tags", "images", "image_tags", "regions", "iterations", "predictions", "exports")}
        problems = bool(missing or corrupt or fk or integrity != ["ok"])
        leftovers = bool(orphans or temps or export_temps) and not repair
        return {"path": str(self.path), "schema_version": self.schema_version, "ok": not problems and not leftovers,
                "sqlite_integrity": integrity, "foreign_key_violations": fk, "counts": counts,
                "missing_blobs": missing, "corrupt_blobs": corrupt, "orphan_blobs": orphans, "temp_files": temps,
                "export_temp_dirs": export_temps, "repairable": bool(orphans or temps or export_temps or lost),
                "repaired": repaired if repair else None}


_FILTER_TERM = re.compile(r"""\s*([A-Za-z0-9_.\-]+)\s+(eq|ne)\s+'((?:[^']|'')*)'\s*$""", re.IGNORECASE)


def parse_metadata_filter(expr: str | None) -> list[tuple[str, str, str]]:
    """Azure's image metadata `$filter`: terms `key eq 'value'` / `key ne 'value'` joined by `and`."""
    if expr is None or not str(expr).strip():
        return []
    terms = []
    for part in re.split(r"\s+and\s+", str(expr).strip(), flags=re.IGNORECASE):
        m = _FILTER_TERM.match(part)
        if not m:
            raise CvlabError("BadRequestInvalid",
                             f"Cannot read the metadata filter term {part!r}: write terms like key eq 'value' or "
                             "key ne 'value', joined with 'and'.")
        terms.append((m.group(1), m.group(2).lower(), m.group(3).replace("''", "'")))
    return terms


def _disk_full(exc: sqlite3.Error) -> bool:
    """SQLITE_FULL (disk, or max_page_count), or an I/O error on write (how ENOSPC can surface in WAL mode)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR)) or \
        "disk is full" in str(exc)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_guid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def default_workspace_path() -> Path:
    """$CVLAB_WORKSPACE, else ./workspace under the current directory."""
    env = os.environ.get("CVLAB_WORKSPACE")
    return Path(env).expanduser() if env else Path.cwd() / "workspace"


def open_workspace(path: str | os.PathLike | None = None) -> Workspace:
    """Open (or create) the workspace at `path`, $CVLAB_WORKSPACE, or ./workspace."""
    return Workspace(path if path is not None else default_workspace_path())


# ---- `cvlab doctor` -----------------------------------------------------------------------------------------------
def configure(parser) -> None:
    parser.description = "Check a workspace's integrity (database vs. image store) and print a JSON report."
    parser.add_argument("--workspace", default=None, help="workspace folder (default: $CVLAB_WORKSPACE or ./workspace)")
    parser.add_argument("--repair", action="store_true",
                        help="remove orphan blobs, leftover temp files and stored predictions whose image was lost")
    parser.add_argument("--no-hashes", action="store_true", help="skip re-hashing every blob (faster)")


def _check_folder(path: Path, args) -> dict:
    ws = Workspace(path, create=False)
    try:
        return ws.check(repair=args.repair, verify_hashes=not args.no_hashes)
    finally:
        ws.close()


def run(args) -> int:
    """Check the workspace and, in workshop mode, every learner seat's workspace under it (``seats``)."""
    from .workshop import SEATS_DIR

    path = Path(args.workspace) if args.workspace else default_workspace_path()
    report = _check_folder(path, args)
    seats = sorted(p for p in (path / SEATS_DIR).glob("*") if (p / DB_NAME).is_file())
    if seats:
        report["seats"] = {p.name: _check_folder(p, args) for p in seats}
        report["ok"] = report["ok"] and all(r["ok"] for r in report["seats"].values())
    print(json.dumps(report, indent=2, default=str))
    return 0 if report["ok"] else 1

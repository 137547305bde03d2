"""The workspace's store: the folder, one SQLite connection per thread, short write transactions, migrations.

A folder with ``cvlab.db`` (SQLite: WAL, foreign keys, ``PRAGMA user_version`` + migrations in ``schema.py``), a
content-addressed image store ``blobs/<sha[:2]>/<sha256>`` (``blobs.py``), ``iterations/<id>/`` for model
artefacts and ``exports/<id>/``. Every section of the Workspace (projects, tags, images, ...) is a mixin over
this class and shares only ``_q``, ``_q1``, ``_tx`` and the blob writers.

Thread safety: one sqlite3 connection per thread (threading.local), ``busy_timeout``, short write transactions.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import uuid
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

from .. import rules
from ..errors import CvlabError
from . import schema

DB_NAME = "cvlab.db"


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


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _is_guid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def _disk_full(exc: sqlite3.Error) -> bool:
    """SQLITE_FULL (disk, or max_page_count), or an I/O error on write (how ENOSPC can surface in WAL mode)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR)) or \
        "disk is full" in str(exc)


class Store:
    """The folder and its database: connections, transactions and migrations (see the module docstring)."""

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
        return (type(self), (str(self.path),))

    def __deepcopy__(self, memo) -> "Store":
        return self  # a handle, not a value: copies of a Project share their workspace

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def db_path(self) -> Path:
        """The SQLite database file, ``cvlab.db``."""
        return self.path / DB_NAME

    @property
    def blobs_dir(self) -> Path:
        """The image store's folder, ``blobs/``."""
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
        """The database's schema version (``PRAGMA user_version``; migrations in ``schema.py``)."""
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
            target = max(schema.MIGRATIONS)  # read now: a test may add a migration
            if version > target:
                raise CvlabError("BadRequestNotSupported",
                                 f"The workspace at {self.path} has schema version {version}, newer than this "
                                 f"cvlab ({target}). Upgrade cvlab.")
            for v in range(version + 1, target + 1):
                for stmt in schema.MIGRATIONS[v].split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {v}")

"""The workspace's store: the folder, pooled SQLite connections, short write transactions, migrations.

A folder with ``cvlab.db`` (SQLite: WAL, foreign keys, ``PRAGMA user_version`` + migrations in ``schema.py``), a
content-addressed image store ``blobs/<sha[:2]>/<sha256>`` (``blobs.py``), ``iterations/<id>/`` for model
artefacts and ``exports/<id>/``. Every section of the Workspace (projects, tags, images, ...) is a mixin over
this class and shares only ``_q``, ``_q1``, ``_tx`` and the blob writers.

Thread safety: a thread borrows a connection from the process-wide ``POOL`` for each statement or transaction
(nested blocks share it), ``busy_timeout``, short write transactions. The pool bounds the process's connections
whatever the number of threads and workspaces (a workshop serves one workspace per seat).
"""
from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import shutil
import sqlite3
import threading
import time
import uuid
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

from .. import rules
from ..errors import CvlabError
from . import schema

DB_NAME = "cvlab.db"
log = logging.getLogger("cvlab.workspace")


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


def _disk_full(exc: BaseException) -> bool:
    """SQLITE_FULL (disk, or max_page_count), an I/O error on write (how ENOSPC surfaces in WAL mode, e.g. when
    the -shm file cannot be made), or an OSError for lack of space or quota."""
    if isinstance(exc, OSError):
        return exc.errno in _NO_SPACE
    if isinstance(exc, CvlabError):
        return exc.status == 507
    code = getattr(exc, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR)) or \
        "disk is full" in str(exc)


_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
RESERVE_NAME = "reserve.bin"
#: Space kept free in every workspace for what must work on a full disk: opening it (SQLite's -shm and -wal files),
#: recording that a job failed, and deleting (which frees the rest). 1 MiB covers them in tests/test_reliability_disk.py.
RESERVE_BYTES = 1 << 20


def storage_problem(exc: BaseException) -> str | None:
    """A learner's explanation when ``exc`` says the disk is full (None otherwise): what a failed training or
    export records as its reason."""
    if not _disk_full(exc):
        return None
    return (f"The disk holding the workspace is full ({exc}). Free some space (delete old iterations, exports, "
            "projects or images, e.g. with cvlab doctor's report), then try again.")


def uses_reserve(method):
    """For the writes that must work on a full disk (opening, recording a job's end, deleting): when one fails
    for lack of space, the workspace gives up its reserve (``RESERVE_BYTES``) and tries once more; the reserve
    comes back as soon as there is room again."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            result = method(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - only storage errors are retried
            if not _disk_full(exc) or not self._release_reserve():
                raise
            log.warning("The disk holding %s is full: used its reserve to %s.", self.path, method.__name__)
            result = method(self, *args, **kwargs)
        self._ensure_reserve()
        return result
    return wrapper


class ConnectionPool:
    """Every SQLite connection of the process, across all workspaces: at most ``limit`` open at once.

    A thread borrows one for a statement or a transaction and gives it back; idle ones are kept for reuse, the
    least recently used closed first when another workspace needs one. Without it, each worker thread kept a
    connection (3 descriptors: db, -wal, -shm) to every seat it had served: 30 seats x 40 threads ran out of
    descriptors. A borrower that finds every connection busy waits up to ``wait_s``, then opens one beyond the
    limit (closed when given back) rather than deadlock a thread that already holds one."""

    def __init__(self, limit: int = 16, wait_s: float = 2.0):
        self.limit = limit
        self.wait_s = wait_s
        self._cond = threading.Condition()
        self._idle: list[tuple[weakref.ref, sqlite3.Connection]] = []  # least recently returned first
        self._open = 0

    def acquire(self, store: "Store") -> sqlite3.Connection:
        stale = []
        with self._cond:
            deadline = None
            while True:
                for i in range(len(self._idle) - 1, -1, -1):
                    owner, conn = self._idle[i]
                    if owner() is store:
                        del self._idle[i]
                        break
                else:
                    conn = None
                if conn is not None:
                    break
                if self._open < self.limit:
                    self._open += 1
                    break
                if self._idle:  # another workspace's idle connection makes room
                    stale.append(self._idle.pop(0)[1])
                    break
                now = time.monotonic()
                deadline = deadline or now + self.wait_s
                if now >= deadline:
                    self._open += 1  # beyond the limit, given back closed
                    break
                self._cond.wait(deadline - now)
        for c in stale:
            with contextlib.suppress(Exception):
                c.close()
        if conn is not None:
            return conn
        try:
            return store._open_connection()
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def release(self, store: "Store", conn: sqlite3.Connection) -> None:
        if conn.in_transaction:  # never hand on a connection in the middle of a transaction
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        with self._cond:
            dead = [c for owner, c in self._idle if owner() is None]  # workspaces dropped without close()
            self._idle = [(owner, c) for owner, c in self._idle if owner() is not None]
            self._open -= len(dead)
            if self._open > self.limit:
                self._open -= 1
                dead.append(conn)
            else:
                self._idle.append((weakref.ref(store), conn))
            self._cond.notify()
        for c in dead:
            with contextlib.suppress(Exception):
                c.close()

    def discard(self, conn: sqlite3.Connection) -> None:
        """Close a borrowed connection instead of giving it back."""
        with self._cond:
            self._open -= 1
            self._cond.notify()
        with contextlib.suppress(Exception):
            conn.close()

    def close_idle(self, store: "Store") -> None:
        """Close the idle connections of one workspace (its ``close()``)."""
        with self._cond:
            mine = [c for owner, c in self._idle if owner() is store]
            self._idle = [(owner, c) for owner, c in self._idle if owner() is not store]
            self._open -= len(mine)
            self._cond.notify_all()
        for c in mine:
            with contextlib.suppress(Exception):
                c.close()

    def stats(self) -> dict:
        """Open and idle connections now (for tests and the soak benchmark)."""
        with self._cond:
            return {"open": self._open, "idle": len(self._idle), "limit": self.limit}


#: The process's connections to every workspace it opens (see ConnectionPool).
POOL = ConnectionPool()


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
        self._pinned: list[sqlite3.Connection] = []  # connections handed out by _conn(), closed by close()
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

    def _open_connection(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def _use(self) -> Iterator[sqlite3.Connection]:
        """A connection for the block, borrowed from the process's pool (``POOL``); blocks nested in the same
        thread share it, so a transaction and the reads inside it see the same connection."""
        held = getattr(self._local, "conn", None) or getattr(self._local, "pinned", None)
        if held is not None:
            yield held
            return
        conn = POOL.acquire(self)
        self._local.conn = conn
        try:
            yield conn
        finally:
            self._local.conn = None
            POOL.release(self, conn)

    def _conn(self) -> sqlite3.Connection:
        """The calling thread's connection, kept for this thread until ``close()`` (for a test that sets a
        per-connection PRAGMA); the workspace itself borrows one per statement or transaction (``_use``)."""
        conn = getattr(self._local, "conn", None) or getattr(self._local, "pinned", None)
        if conn is None:
            conn = POOL.acquire(self)
            self._local.pinned = conn
            with self._conns_lock:
                self._pinned.append(conn)
        return conn

    def close(self) -> None:
        """Close this workspace's idle connections and the ones pinned by ``_conn()`` (any thread); the object
        reopens on next use. Connections other threads are using go back to the pool when they finish."""
        with self._conns_lock:
            pinned, self._pinned = self._pinned, []
        for c in pinned:
            POOL.discard(c)
        POOL.close_idle(self)
        self._local = threading.local()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction (BEGIN IMMEDIATE takes the write lock up front); nests as a no-op."""
        with self._use() as conn:
            with self._tx_on(conn) as c:
                yield c

    @contextlib.contextmanager
    def _tx_on(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
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

    @property
    def reserve_path(self) -> Path:
        """The reserve file (``RESERVE_BYTES`` kept for opening, recording failures and deleting on a full disk)."""
        return self.path / RESERVE_NAME

    def _ensure_reserve(self) -> bool:
        """Make the reserve back up to ``RESERVE_BYTES`` with what room there is (allocated for real, not a sparse
        file). Space the reserve gave up goes back to it before an ordinary write can take it: otherwise one
        upload after opening a full workspace took the freed space and deleting (how space is freed) then failed."""
        path = self.reserve_path
        try:
            have = path.stat().st_size
        except OSError:
            have = 0
        if have >= RESERVE_BYTES:
            return True
        try:
            want = min(RESERVE_BYTES, have + shutil.disk_usage(self.path).free) // 4096 * 4096
            if want > have:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
                try:
                    if hasattr(os, "posix_fallocate"):
                        os.posix_fallocate(fd, 0, want)
                    else:
                        os.pwrite(fd, b"\0" * (want - have), have)
                finally:
                    os.close(fd)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            return path.stat().st_size > 0
        return False

    def _release_reserve(self) -> bool:
        """Give the reserve back to the disk; False when there was none left."""
        try:
            self.reserve_path.unlink()
            return True
        except OSError:
            return False

    def _storage_error(self, exc: BaseException) -> CvlabError:
        """The disk holding the workspace is full (or refuses writes): 507, nothing of the step was stored."""
        return CvlabError("ErrorUnknown", f"Could not write to the workspace at {self.path} ({exc}): the disk is "
                                          "full or read-only. Free some space and try again; nothing of this step "
                                          "was stored.", status=507)

    def _q(self, sql: str, args: Sequence = ()) -> list[sqlite3.Row]:
        with self._use() as conn:
            return conn.execute(sql, tuple(args)).fetchall()

    def _q1(self, sql: str, args: Sequence = ()) -> sqlite3.Row | None:
        with self._use() as conn:
            return conn.execute(sql, tuple(args)).fetchone()

    @property
    def schema_version(self) -> int:
        """The database's schema version (``PRAGMA user_version``; migrations in ``schema.py``)."""
        return self._q1("PRAGMA user_version")[0]

    @uses_reserve
    def _migrate(self) -> None:
        try:
            with self._use() as conn:
                self._migrate_on(conn)
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
                raise
            self.close()
            if _disk_full(e) and shutil.disk_usage(self.path).free < 4 * RESERVE_BYTES:
                raise self._storage_error(e) from None  # opening needs room for SQLite's -shm and -wal files
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

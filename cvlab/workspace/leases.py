"""Leases: which Training / Exporting / Importing rows a live process is still working on, whichever process.

A job (a training, an export, a project import) holds an exclusive lock on ``jobs/<row id>.lock`` while it runs;
the operating system drops the lock when the process ends, however it ends (SIGKILL, crash, power cut). So a row
still marked Training, Exporting or Importing whose lock nobody holds is stuck: its job is not running in any live
process. ``cvlab doctor`` reports those without a restart, and start-up recovery (``recover_interrupted``) fails
only those, not a job another process sharing the workspace is running. ``flock`` locks belong to an open file, so
a check from the same process that holds the lease sees it held too.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..errors import CvlabError
from .store import _guid

try:  # POSIX
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
except ImportError:  # Windows: a lock on the file's first byte, also dropped when the process ends
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

#: The statuses of a row whose job is running (or waiting in the workshop queue), by table.
RUNNING_STATUSES = {"iterations": ("Training", "Queued"), "exports": ("Exporting",), "projects": ("Importing",)}


class Lease:
    """The lock a running job holds on its row; ``release()`` (idempotent) when the job ends."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(self._fd):
            os.close(self._fd)
            self._fd = None
            raise CvlabError("Conflict", f"Another cvlab process is already running the job {path.stem}.")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # before unlocking: whoever opened it meanwhile finds its row finished
        with contextlib.suppress(OSError):
            _unlock(fd)
        os.close(fd)

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class LeasesMixin:
    """Job leases on Training / Exporting / Importing rows (see the module docstring)."""

    @property
    def jobs_dir(self) -> Path:
        """The lease files' folder, ``jobs/``."""
        return self.path / "jobs"

    def job_lease(self, row_id: str) -> Lease:
        """Take the lease of the job of row ``row_id`` (an iteration, export or project id) for this process."""
        return Lease(self.jobs_dir / f"{_guid(row_id, 'Job id')}.lock")

    def job_running(self, row_id: str) -> bool:
        """Whether some live process holds the lease of ``row_id``'s job (this one included)."""
        path = self.jobs_dir / f"{row_id}.lock"
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            return False
        try:
            if not _try_lock(fd):
                return True
            _unlock(fd)  # a lease its dead holder left behind: removed once its row is recovered
            return False
        finally:
            os.close(fd)

    def stuck_jobs(self) -> dict[str, list[dict]]:
        """Rows marked running whose job no live process runs: ``{"iterations": [...], "exports": [...],
        "imports": [...]}``, each ``{"id", "project_id", "status", "last_modified"}``. A row is re-read after its
        lease is found free, so a job that just finished is not reported."""
        out: dict[str, list[dict]] = {}
        for table, key in (("iterations", "iterations"), ("exports", "exports"), ("projects", "imports")):
            statuses = RUNNING_STATUSES[table]
            marks = ",".join("?" * len(statuses))
            project = "id" if table == "projects" else "project_id"
            sql = f"SELECT id, {project} AS project_id, status, last_modified FROM {table} WHERE status IN ({marks})"
            found = []
            for row in self._q(sql, statuses):
                if self.job_running(row["id"]):
                    continue
                again = self._q1(f"SELECT status, last_modified FROM {table} WHERE id = ?", (row["id"],))
                if again is not None and tuple(again) == (row["status"], row["last_modified"]):
                    found.append(dict(row))
            out[key] = found
        return out

    def forget_lease(self, row_id: str) -> None:
        """Remove the lease file a dead job left behind, once its row has been recovered."""
        with contextlib.suppress(OSError):
            (self.jobs_dir / f"{row_id}.lock").unlink()

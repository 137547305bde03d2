"""The content-addressed image store: ``blobs/<sha[:2]>/<sha256>``, written before the rows that reference them.

Crash safety: a blob is written to ``blobs/tmp/``, fsynced and atomically renamed *before* the row that references
it is committed; blobs are only deleted after the rows are gone. So a crash leaves at worst an orphan blob or a
temp file, which ``check()`` reports and ``check(repair=True)`` removes. Blob deletion and row insertion both
happen under SQLite's write lock, so they cannot race, even across processes.
A stored prediction's image (Azure's Predictions tab: a 30-day log, not the learner's data) is renamed into place
the same way but not fsynced, as its row is not (WAL with synchronous=NORMAL): a power cut may lose the last
seconds of stored predictions, and ``check(repair=True)`` then drops a row whose image was lost. Skipping that
fsync is what keeps a stored prediction cheap (``benchmarks/serve.md``). (The REST service also writes a stored
prediction just after answering, so a server killed in that millisecond loses it:
``cvlab.service.context.DeferredStores``.)
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from pathlib import Path
from typing import Iterable


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


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class BlobsMixin:
    """The image store under ``blobs/`` (see the module docstring for its crash safety)."""

    def blob_path(self, sha256: str) -> Path:
        """Where the blob of this content hash lives (it may not exist)."""
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

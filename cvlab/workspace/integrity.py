"""``check()``: the database against the image store (what ``cvlab doctor`` prints), and the safe repairs."""
from __future__ import annotations

import contextlib
import shutil

from .blobs import _file_sha256


class IntegrityMixin:
    """``check()``: the database against the image store, and the safe repairs."""

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

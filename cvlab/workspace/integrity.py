"""``check()``: the database against the files (what ``cvlab doctor`` prints), and the safe repairs."""
from __future__ import annotations

import contextlib
import shutil

from .blobs import _file_sha256
from .store import _is_guid

_INTERRUPTED = "Interrupted: the process running it stopped before it finished (cvlab doctor found it). {again}"


class IntegrityMixin:
    """``check()``: the database against the image store, export and iteration files, and the safe repairs."""

    def check(self, repair: bool = False, verify_hashes: bool = True) -> dict:
        """Integrity report: SQLite integrity and foreign keys, rows whose blob is missing or corrupt, orphan blobs,
        leftover temp files, export zips and build folders no export refers to (a deleted export's), iteration
        folders without their iteration, rows stuck in Training / Exporting / Importing whose job no live process
        runs (whether or not a server restarted since), and bad records (JSON columns a reader skips).

        ``repair=True`` removes the orphans and temp files, the stored predictions whose image was lost (a power
        cut: their images are not fsynced), marks stuck trainings and exports Failed, deletes half-made imports
        (the source project is untouched) and rewrites bad records; nothing else is safe to change."""
        with self._use() as conn:
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
        stuck = self.stuck_jobs()
        # while an export is being built, its build folder (exports/tmp*) and its zip before the row names it are
        # not leftovers; a stuck export's are
        stuck_exports = {e["id"] for e in stuck["exports"]}
        building = any(r["id"] not in stuck_exports for r in self._q("SELECT id FROM exports WHERE status = "
                                                                      "'Exporting'"))
        exports = self.path / "exports"
        export_temps = [] if building else sorted(d.name for d in exports.glob("tmp*") if d.is_dir())
        export_files = {"zips": [], "dirs": []} if building else self.export_files_on_disk()
        iteration_ids = {r[0] for r in self._q("SELECT id FROM iterations")}
        orphan_iterations = sorted(d.name for d in (self.path / "iterations").iterdir()
                                   if d.is_dir() and _is_guid(d.name) and d.name not in iteration_ids)
        bad = self.bad_records(repair=repair)
        repaired = {"orphan_blobs": 0, "temp_files": 0, "lost_predictions": 0, "orphan_export_files": 0,
                    "orphan_iteration_dirs": 0, "stuck_iterations": 0, "stuck_exports": 0, "stuck_imports": 0,
                    "bad_records": len(bad) if repair else 0}
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
                shutil.rmtree(exports / name, ignore_errors=True)
                repaired["temp_files"] += 1
            self._delete_files([exports / n for n in export_files["zips"] + export_files["dirs"]])
            repaired["orphan_export_files"] = len(export_files["zips"]) + len(export_files["dirs"])
            for name in orphan_iterations:
                shutil.rmtree(self.path / "iterations" / name, ignore_errors=True)
            repaired["orphan_iteration_dirs"] = len(orphan_iterations)
            repaired.update(self._recover_stuck(stuck))
        counts = {t: self._q1(f"SELECT COUNT(*) FROM {t}")[0] for t in
                  ("projects", "tags", "images", "image_tags", "regions", "iterations", "predictions", "exports")}
        counts["export_files"] = sum(1 for f in exports.glob("*.zip") if f.is_file())
        problems = bool(missing or corrupt or fk or integrity != ["ok"])
        found = bool(orphans or temps or export_temps or export_files["zips"] or export_files["dirs"]
                     or orphan_iterations or bad or any(stuck.values()))
        return {"path": str(self.path), "schema_version": self.schema_version,
                "ok": not problems and not (found and not repair),
                "sqlite_integrity": integrity, "foreign_key_violations": fk, "counts": counts,
                "missing_blobs": missing, "corrupt_blobs": corrupt, "orphan_blobs": orphans, "temp_files": temps,
                "export_temp_dirs": export_temps, "orphan_export_files": export_files["zips"] + export_files["dirs"],
                "orphan_iteration_dirs": orphan_iterations, "stuck_iterations": stuck["iterations"],
                "stuck_exports": stuck["exports"], "stuck_imports": stuck["imports"], "bad_records": bad,
                "repairable": bool(found or lost), "repaired": repaired if repair else None}

    def _recover_stuck(self, stuck: dict) -> dict:
        """Stuck trainings and exports end Failed saying why; half-made imports are deleted."""
        done = {"stuck_iterations": 0, "stuck_exports": 0, "stuck_imports": 0}
        for it in stuck["iterations"]:
            self.update_iteration(it["project_id"], it["id"], status="Failed", training_error_details=
                                  _INTERRUPTED.format(again="Train the project again."))
            self.forget_lease(it["id"])
            done["stuck_iterations"] += 1
        for ex in stuck["exports"]:
            self.update_export(ex["id"], status="Failed", error=_INTERRUPTED.format(again="Export it again."))
            self.forget_lease(ex["id"])
            done["stuck_exports"] += 1
        for p in stuck["imports"]:
            self.delete_project(p["id"])
            self.forget_lease(p["id"])
            done["stuck_imports"] += 1
        return done

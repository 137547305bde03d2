"""Export records: the jobs ``cvlab.export`` runs (Exporting -> Done or Failed), their zips and build folders.

A Done export's zip is ``exports/<token>.zip`` (its ``path``); its download link is good only while that row
exists, so deleting the export's project, iteration or seat deletes the zip and revokes the link at once.
"""
from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path
from typing import Iterable

from .. import rules
from ..domains import get_domain
from ..errors import CvlabError
from ..model import Export
from .store import _dt, _guid, _new_id, _now, _ts, uses_reserve

_EXPORT_UPDATABLE = {"status", "download_uri", "path", "newer_version_available", "error"}


class ExportsMixin:
    """Export records: the jobs ``cvlab.export`` runs (Exporting -> Done or Failed)."""

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
        """One export record by id."""
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
        write = self._finish_export if fields.get("status") in ("Done", "Failed") else self._write_export
        write(ex.id, fields)
        return self.get_export(ex.id)

    def _write_export(self, export_id: str, fields: dict) -> None:
        with self._tx() as c:
            c.execute(f"UPDATE exports SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                      list(fields.values()) + [export_id])

    @uses_reserve
    def _finish_export(self, export_id: str, fields: dict) -> None:
        """An export's end is recorded even on a full disk, so it never stays Exporting."""
        self._write_export(export_id, fields)

    def get_exports(self, project_id: str, iteration_id: str) -> list[Export]:
        """The iteration's export records, oldest first (``cvlab.export.get_exports`` is the SDK's spelling)."""
        it = self.get_iteration(project_id, iteration_id)
        return [self._export(r) for r in self._q("SELECT * FROM exports WHERE iteration_id = ? ORDER BY created, "
                                                 "rowid", (it.id,))]

    def recover_interrupted_exports(self, running: Iterable[str] = ()) -> list[str]:
        """Mark exports left in Exporting by a process that stopped (kill, crash, power cut) as Failed, saying why;
        `running` are ids this process is still building, and an export another live process builds (it holds
        its lease) is left alone too. Call at start-up, like training.recover_interrupted."""
        live = {str(i) for i in running}
        stuck = [r["id"] for r in self._q("SELECT id FROM exports WHERE status = 'Exporting'")
                 if r["id"] not in live and not self.job_running(r["id"])]
        for eid in stuck:
            self.update_export(eid, status="Failed", error="Interrupted: the process building this export stopped "
                                                           "before it finished. Export the iteration again.")
            self.forget_lease(eid)
        return stuck

    def export_download(self, token: str) -> Path | None:
        """The zip of the Done export whose download token is ``token``, or None: a link is good only while its
        export exists (deleted with its project, iteration or seat)."""
        relative = f"exports/{token}.zip"
        row = self._q1("SELECT 1 FROM exports WHERE path = ? AND status = 'Done'", (relative,))
        path = self.path / relative
        return path if row is not None and path.is_file() else None

    def _export_files(self, where: str, args: Iterable) -> list[Path]:
        """The files of the exports matching ``where`` (zips and build folders), to delete once the rows are."""
        files = []
        for r in self._q(f"SELECT id, path FROM exports WHERE {where}", list(args)):
            files.append(self.path / "exports" / r["id"])
            if r["path"]:
                files.append(self.path / r["path"])
        return files

    @staticmethod
    def _delete_files(paths: Iterable[Path]) -> None:
        for path in paths:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def export_files_on_disk(self) -> dict[str, list[str]]:
        """Export zips and build folders under ``exports/`` no export row refers to (``check()`` reports them;
        a zip whose export was deleted, a crash between the zip's rename and its row)."""
        known = {r["path"] for r in self._q("SELECT path FROM exports WHERE path IS NOT NULL")}
        ids = {r["id"] for r in self._q("SELECT id FROM exports")}
        zips, dirs = [], []
        for entry in sorted((self.path / "exports").iterdir()):
            if entry.is_file() and entry.suffix == ".zip":
                if f"exports/{entry.name}" not in known:
                    zips.append(entry.name)
            elif entry.is_dir() and not entry.name.startswith("tmp") and entry.name not in ids:
                dirs.append(entry.name)
        return {"zips": zips, "dirs": dirs}

    def export_dir(self, export_id: str) -> Path:
        """Folder for an export's build; created on demand."""
        d = self.path / "exports" / _guid(export_id, "Export id")
        d.mkdir(parents=True, exist_ok=True)
        return d

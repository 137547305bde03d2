"""Iterations: the records training writes, publishing under a name the prediction API uses."""
from __future__ import annotations

import shutil
import sqlite3
from dataclasses import fields as dc_fields
from pathlib import Path

from .. import rules
from ..domains import get_domain
from ..errors import CvlabError
from ..model import Iteration
from .store import _dt, _guid, _marks, _new_id, _now, _ts, uses_reserve

_ITERATION_FIELDS = {f.name for f in dc_fields(Iteration)} - {"id", "project_id"}


class IterationsMixin:
    """Iterations: the records training writes, their artefact folders, publishing."""

    def _iteration(self, row: sqlite3.Row) -> Iteration:
        d = dict(row)
        for k in ("created", "last_modified", "trained_at"):
            d[k] = _dt(d[k])
        d["exportable"] = bool(d["exportable"])
        return Iteration(**d)._bind(self)

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
        """The project's iterations in creation order (``get_trained_iterations`` orders them by training)."""
        p = self.get_project(project_id)
        return [self._iteration(r) for r in
                self._q("SELECT * FROM iterations WHERE project_id = ? ORDER BY created, rowid", (p.id,))]

    def get_trained_iterations(self, project_id: str, status: str | None = "Completed") -> list[Iteration]:
        """The project's iterations of ``status`` (None: all) in the order they finished training, the most
        recently trained last; one not trained yet counts from its creation. Azure's "latest iteration" is the
        last one: an iteration created earlier but finished later is the newer model.

        >>> [it.name for it in ws.get_trained_iterations(project.id)]      # doctest: +SKIP
        ['Iteration 1', 'Iteration 2']
        """
        its = [it for it in self.get_iterations(project_id) if status is None or it.status == status]
        order = {it.id: i for i, it in enumerate(its)}  # creation order breaks ties (rowid, not random ids)
        return sorted(its, key=lambda it: (it.trained_at or it.created, order[it.id]))

    def latest_iteration(self, project_id: str, status: str | None = "Completed") -> Iteration | None:
        """The most recently trained iteration of ``status`` (None: any), or None: what the quick test, the
        export command, region proposals and the widgets use when no iteration is named."""
        its = self.get_trained_iterations(project_id, status)
        return its[-1] if its else None

    def get_iteration(self, project_id: str, iteration_id: str) -> Iteration:
        """One iteration of the project by id; ``NotFoundIteration`` when there is none."""
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
        write = self._finish_iteration if vals.get("status") in ("Completed", "Failed") else self._write_iteration
        write(it, vals)
        return self.get_iteration(it.project_id, it.id)

    def _write_iteration(self, it: Iteration, vals: dict) -> None:
        with self._tx() as c:
            if "name" in vals:
                self._check_iteration_name(c, it.project_id, it.id, vals["name"])
            sets = ", ".join(f"{k} = ?" for k in vals)
            c.execute(f"UPDATE iterations SET {sets} WHERE id = ?", list(vals.values()) + [it.id])

    @uses_reserve
    def _finish_iteration(self, it: Iteration, vals: dict) -> None:
        """A training's end is recorded even on a full disk, so an iteration never stays Training."""
        self._write_iteration(it, vals)

    @uses_reserve
    def delete_iteration(self, project_id: str, iteration_id: str) -> None:
        """Delete an iteration with its model and exports, their zips too, so their download links stop working
        (refused while it is published, as on Azure). Works on a full disk."""
        it = self.get_iteration(project_id, iteration_id)
        if it.publish_name:
            raise CvlabError("BadRequestIterationIsPublished",
                             f"{it.name} is published as {it.publish_name!r}: unpublish it first.")
        export_files = self._export_files("iteration_id = ?", (it.id,))
        with self._tx() as c:
            c.execute("DELETE FROM iterations WHERE id = ?", (it.id,))
        shutil.rmtree(self.path / "iterations" / it.id, ignore_errors=True)
        self._delete_files(export_files)

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
        rules.check_publish_name(publish_name)
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
        """Take the published name away; the prediction API stops answering under it."""
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

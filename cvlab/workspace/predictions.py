"""Stored predictions (Azure's Predictions tab): kept with their image for 30 days, queried by tag thresholds."""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from .. import rules
from ..errors import CvlabError
from ..images import ImageInfo, inspect_image, sha256_bytes
from ..model import StoredPrediction
from .store import _dt, _guid, _guids, _marks, _new_id, _now, _ts, uses_reserve

EXPIRY_INTERVAL_S = 60.0  # stored predictions past retention are swept at most this often (a table scan)


class PredictionsMixin:
    """Stored predictions (Azure's Predictions tab): kept with their image for 30 days."""

    def _prediction(self, row: sqlite3.Row) -> StoredPrediction:
        preds = self._json(row["predictions"], "predictions", "predictions", row["id"], list, "[]")
        return StoredPrediction(id=row["id"], project_id=row["project_id"], iteration_id=row["iteration_id"],
                                created=_dt(row["created"]), sha256=row["sha256"], width=row["width"],
                                height=row["height"], predictions=preds, application=row["application"],
                                domain_id=row["domain_id"])

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
        rules.check_application_name(application)
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
        """One stored prediction by id; ``NotFound`` when it expired or never existed."""
        p = self.get_project(project_id)
        row = self._q1("SELECT * FROM predictions WHERE project_id = ? AND id = ?",
                       (p.id, _guid(prediction_id, "Prediction id")))
        if row is None:
            raise CvlabError("NotFound", f"Prediction {prediction_id} does not exist in project {p.name!r}.")
        return self._prediction(row)

    @uses_reserve
    def delete_predictions(self, project_id: str, ids: Any) -> int:
        """Delete stored predictions by id (at most 256); returns how many went. Works on a full disk."""
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

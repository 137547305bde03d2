"""The instructor's copy of every seat's progress events: ``<workspace>/workshop/class.db`` (SQLite, WAL).

A learner's reporter sends numbered events of one stream (``cvlab.classroom.outbox``). ``ingest`` keeps an event
only when its number is the next one expected for that stream, and answers with the highest number kept: a batch
sent twice, or cut off and sent again, is stored once, and a gap is never filled out of order. Events that say the
same thing (same ``key``) are kept once per seat even from two streams (a learner who deleted their outbox).
Resetting a seat deletes its events but remembers how far each stream got, so a laptop still joined to the seat
does not send its old progress again.
"""
from __future__ import annotations

import json
import re
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

from cvlab.errors import CvlabError

FOLDER = "workshop"
DB = "class.db"
TYPES = ("lesson", "exercise", "quiz", "quiz_reset", "exam", "iteration")
MAX_EVENTS = 500
MAX_DATA = 16_384
_STREAM = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (seat TEXT NOT NULL, stream TEXT NOT NULL, acked INTEGER NOT NULL DEFAULT 0,
    first_at TEXT NOT NULL, last_at TEXT NOT NULL, PRIMARY KEY (seat, stream));
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, seat TEXT NOT NULL, stream TEXT NOT NULL,
    seq INTEGER NOT NULL, key TEXT NOT NULL, type TEXT NOT NULL, at TEXT NOT NULL, received TEXT NOT NULL,
    data TEXT NOT NULL, UNIQUE (seat, key));
CREATE INDEX IF NOT EXISTS events_seat ON events (seat, id);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _bad(message: str) -> CvlabError:
    return CvlabError("BadRequestInvalid", message)


def _check_event(ev) -> tuple[int, str, str, str, str]:
    if not isinstance(ev, dict):
        raise _bad("Each event is a JSON object {seq, key, type, at, data}.")
    seq, key, kind, at, data = (ev.get(k) for k in ("seq", "key", "type", "at", "data"))
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise _bad(f"An event's 'seq' is a whole number from 1 (got {seq!r}).")
    if not isinstance(key, str) or not 1 <= len(key) <= 200:
        raise _bad("An event's 'key' is 1-200 characters.")
    if kind not in TYPES:
        raise _bad(f"Event type {kind!r} is not one of {', '.join(TYPES)}.")
    try:
        when = parse_time(at) if isinstance(at, str) and len(at) <= 40 else None
    except ValueError:
        when = None
    if when is None:
        raise _bad(f"An event's 'at' is an ISO 8601 time (got {str(at)[:40]!r}).")
    if not isinstance(data, dict):
        raise _bad("An event's 'data' is a JSON object.")
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    if len(text) > MAX_DATA:
        raise _bad(f"An event's 'data' is at most {MAX_DATA} characters of JSON.")
    return seq, key, kind, when.isoformat(timespec="milliseconds"), text


class ClassStore:
    def __init__(self, ws):
        self.path = Path(ws.path) / FOLDER / DB
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._local = threading.local()
        with self._lock:
            db = self._db()
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', 0)")
            db.commit()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # ---- writing ----------------------------------------------------------------------------------------------
    def ingest(self, seat: str, body) -> dict:
        """Store a batch ``{"stream": id, "events": [...]}`` from ``seat``; returns ``{"acked": n, "stored": k}``."""
        if not isinstance(body, dict):
            raise _bad('Send a JSON object: {"stream": "...", "events": [{seq, key, type, at, data}, ...]}.')
        stream, events = body.get("stream"), body.get("events", [])
        if not isinstance(stream, str) or not _STREAM.match(stream):
            raise _bad("'stream' is 8-64 letters, digits, '-' or '_' (the outbox's id).")
        if not isinstance(events, list) or len(events) > MAX_EVENTS:
            raise _bad(f"'events' is a list of at most {MAX_EVENTS} events.")
        checked = sorted((_check_event(ev) for ev in events), key=lambda e: e[0])
        now = utcnow().isoformat(timespec="milliseconds")
        stored = 0
        with self._lock:
            db = self._db()
            with db:
                db.execute("INSERT OR IGNORE INTO streams VALUES (?, ?, 0, ?, ?)", (seat, stream, now, now))
                acked = db.execute("SELECT acked FROM streams WHERE seat = ? AND stream = ?",
                                   (seat, stream)).fetchone()[0]
                for seq, key, kind, at, data in checked:
                    if seq <= acked:
                        continue  # already kept: a batch sent again
                    if seq != acked + 1:
                        break     # a gap: the rest comes again after the missing ones
                    cur = db.execute("INSERT OR IGNORE INTO events (seat, stream, seq, key, type, at, received, data)"
                                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (seat, stream, seq, key, kind, at, now, data))
                    stored += cur.rowcount
                    acked = seq
                db.execute("UPDATE streams SET acked = ?, last_at = ? WHERE seat = ? AND stream = ?",
                           (acked, now, seat, stream))
        return {"acked": acked, "stored": stored}

    def delete_seat(self, seat: str) -> int:
        """Forget a seat's events (a reset); streams keep their count so old events are not taken again."""
        with self._lock:
            db = self._db()
            with db:
                n = db.execute("DELETE FROM events WHERE seat = ?", (seat,)).rowcount
                db.execute("UPDATE meta SET value = value + 1 WHERE name = 'generation'")
        return n

    # ---- reading ----------------------------------------------------------------------------------------------
    def generation(self) -> int:
        return self._db().execute("SELECT value FROM meta WHERE name = 'generation'").fetchone()[0]

    def events_after(self, last_id: int) -> list[tuple]:
        """(id, seat, type, at, received, data dict) of every event stored after ``last_id``, in order."""
        rows = self._db().execute("SELECT id, seat, type, at, received, data FROM events WHERE id > ? ORDER BY id",
                                  (last_id,)).fetchall()
        return [(i, s, t, a, r, json.loads(d)) for i, s, t, a, r, d in rows]

    def count(self, seat: str | None = None) -> int:
        if seat is None:
            return self._db().execute("SELECT COUNT(*) FROM events").fetchone()[0]
        return self._db().execute("SELECT COUNT(*) FROM events WHERE seat = ?", (seat,)).fetchone()[0]

    def contacts(self) -> dict[str, str]:
        """The last time each seat's reporter was heard from (ISO)."""
        return dict(self._db().execute("SELECT seat, MAX(last_at) FROM streams GROUP BY seat").fetchall())


__all__ = ["ClassStore", "TYPES", "parse_time", "utcnow"]

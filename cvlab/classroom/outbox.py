"""The learner's outbox: the progress events waiting for the instructor, kept in the learner's workspace.

``<workspace>/classroom/outbox.jsonl`` is append-only: one event per line, ``{"seq", "key", "type", "at",
"data"}``. ``seq`` counts 1, 2, 3... in one *stream* (a random id made with the outbox); ``key`` says what the event
is about (``quiz:<digest of the answer record>``, ``it:<iteration>:<digest>``...), so the same fact is never queued
twice, even when the reporter restarts and reads the workspace again. ``acked.json`` holds the stream id and the
highest ``seq`` the server has confirmed storing. The reporter is the only writer (it holds ``reporter.lock``).

Delivery is at least once (a batch is sent again until the server acknowledges it) and the server keeps an event
only once (it stores ``seq = acked + 1`` and ignores what it already has), so the instructor sees every event
exactly once, whichever side restarts or however often the network drops.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

EVENTS = "outbox.jsonl"
ACKED = "acked.json"


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` in one step (a crash leaves the old file or the new one, never half)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Event:
    seq: int
    key: str
    type: str
    at: str
    data: dict

    def wire(self) -> dict:
        return {"seq": self.seq, "key": self.key, "type": self.type, "at": self.at, "data": self.data}


class Outbox:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / EVENTS
        self.acked_path = self.folder / ACKED
        self.events: list[Event] = []
        self.keys: set[str] = set()
        self.problems: list[str] = []
        self._load()
        state = self._read_acked()
        self.stream: str = state.get("stream") or secrets.token_urlsafe(12)
        self.acked: int = min(int(state.get("acked", 0)), self.last_seq)
        if not state.get("stream"):
            self._write_acked()

    def _read_acked(self) -> dict:
        try:
            data = json.loads(self.acked_path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (FileNotFoundError, ValueError):
            return {}

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        for number, line in enumerate(raw.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                ev = Event(int(rec["seq"]), str(rec["key"]), str(rec["type"]), str(rec["at"]), dict(rec["data"]))
            except (ValueError, KeyError, TypeError):
                self.problems.append(f"{self.path} line {number}: not an event; skipped")
                continue
            if ev.seq != self.last_seq + 1 or ev.key in self.keys:
                self.problems.append(f"{self.path} line {number}: seq {ev.seq} out of order; skipped")
                continue
            self.events.append(ev)
            self.keys.add(ev.key)

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq if self.events else 0

    def add(self, type: str, key: str, at: str, data: dict) -> Event | None:
        """Queue one event (None when an event with this key is already queued or sent)."""
        if key in self.keys:
            return None
        ev = Event(self.last_seq + 1, key, type, at, data)
        line = json.dumps(ev.wire(), ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if os.fstat(fd).st_size:  # a crash mid-line leaves no newline: start this event on a fresh line
                with open(self.path, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.events.append(ev)
        self.keys.add(key)
        return ev

    def pending(self, limit: int = 200) -> list[Event]:
        """Events the server has not confirmed, oldest first (seq ``acked + 1`` onwards)."""
        start = self.acked  # events[i].seq == i + 1
        return self.events[start:start + limit]

    def waiting(self) -> int:
        return self.last_seq - self.acked

    def ack(self, acked: int) -> None:
        """Record the server's acknowledgement. A lower number than before means the server lost what it had
        (a new workspace, another seat): everything after it is sent again."""
        acked = max(0, min(int(acked), self.last_seq))
        if acked != self.acked:
            self.acked = acked
            self._write_acked()

    def restart_stream(self) -> None:
        """Send everything again under a new stream id (the server holds more of the old stream than this
        outbox: the outbox was deleted and made again). The server still keeps each fact once, by its key."""
        self.stream, self.acked = secrets.token_urlsafe(12), 0
        self._write_acked()

    def _write_acked(self) -> None:
        write_atomic(self.acked_path, json.dumps({"stream": self.stream, "acked": self.acked}).encode())


__all__ = ["Event", "Outbox", "write_atomic"]

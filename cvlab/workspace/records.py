"""Reading JSON columns that may hold a bad record already on disk, written before the Unicode check existed (a
lone surrogate such as ``"\\ud800"``, which no UTF-8 reply can carry) or damaged by hand (not JSON at all).

A reader never fails on one: it skips the bad part (the dict entry or list item holding invalid text; the whole
value when it is not JSON or not of its type), logs it once, and serves the rest, so one seat's record cannot
make a page, a listing or the instructor's progress answer 500. ``check()`` lists every bad record and
``check(repair=True)`` rewrites each with its invalid text replaced (U+FFFD) or, for a value that is not JSON,
with its empty default.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from .. import rules

log = logging.getLogger("cvlab.workspace")

_DROP = object()

#: Every JSON column: (table, key column, column, type of the value, its empty default).
JSON_COLUMNS = (("images", "id", "metadata", dict, "{}"),
                ("projects", "id", "settings", dict, "{}"),
                ("projects", "id", "target_export_platforms", list, "[]"),
                ("predictions", "id", "predictions", list, "[]"),
                ("settings", "key", "value", object, "null"))


def _clean(value: Any, replace: bool) -> tuple[Any, int]:
    """``value`` without its invalid text: dropped (``replace=False``: the entry or item holding it goes) or
    replaced by U+FFFD (``replace=True``); and how many strings were invalid."""
    if isinstance(value, str):
        if rules.unicode_problem(value) is None:
            return value, 0
        return (value.encode("utf-8", "replace").decode("utf-8") if replace else _DROP), 1
    if isinstance(value, list):
        out, bad = [], 0
        for item in value:
            item, n = _clean(item, replace)
            bad += n
            if item is not _DROP:
                out.append(item)
        return out, bad
    if isinstance(value, dict):
        out, bad = {}, 0
        for k, v in value.items():
            k, n1 = _clean(k, replace)
            v, n2 = _clean(v, replace)
            bad += n1 + n2
            if k is not _DROP and v is not _DROP:
                out[k] = v
        return out, bad
    return value, 0


def parse_column(text: Any, kind: type, default: str, replace: bool = False) -> tuple[Any, str | None]:
    """The value of a JSON column and what was wrong with it (None: nothing)."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return json.loads(default), "is not JSON"
    if kind is not object and not isinstance(value, kind):
        return json.loads(default), f"is not a JSON {kind.__name__}"
    if "\\u" not in text:  # invalid text only arrives as a \ud800-style escape
        return value, None
    clean, bad = _clean(value, replace)
    if not bad:
        return value, None
    return (json.loads(default) if clean is _DROP else clean), f"holds {bad} text value(s) that are not valid Unicode"


class RecordsMixin:
    """Tolerant JSON columns (see the module docstring)."""

    def _json(self, text: Any, table: str, column: str, row_id: str, kind: type = object,
              default: str = "null") -> Any:
        value, problem = parse_column(text, kind, default)
        if problem:
            seen = self.__dict__.setdefault("_bad_seen", set())
            if (table, column, row_id) not in seen:
                seen.add((table, column, row_id))
                log.warning("A bad record in %s: %s.%s of %s %s; skipped (cvlab doctor --repair rewrites it).",
                            self.path, table, column, row_id, problem)
        return value

    def bad_records(self, repair: bool = False) -> list[dict]:
        """Every JSON column value that is not JSON, not of its type or holds invalid text; ``repair`` rewrites
        each (invalid text replaced by U+FFFD, a value that is not JSON by its empty default)."""
        found = []
        for table, key, column, kind, default in JSON_COLUMNS:
            for row in self._q(f"SELECT {key}, {column} FROM {table}"):
                value, problem = parse_column(row[1], kind, default, replace=True)
                if problem is None:
                    continue
                found.append({"table": table, "column": column, "id": row[0], "problem": problem})
                if repair:
                    with self._tx() as c:
                        c.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (json.dumps(value), row[0]))
        return found

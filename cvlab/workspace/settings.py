"""Workspace settings (key -> JSON value), the pricing tier and the monthly usage counters."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .. import rules
from ..errors import CvlabError
from .store import _now, uses_reserve


class SettingsMixin:
    """Settings (key -> JSON value), the pricing tier and the monthly usage counters."""

    def get_setting(self, key: str, default: Any = None) -> Any:
        """A stored setting's value, or ``default``.

        >>> ws.set_setting("camera", {"line": 2}); ws.get_setting("camera")      # doctest: +SKIP
        {'line': 2}
        """
        row = self._q1("SELECT value FROM settings WHERE key = ?", (key,))
        return self._json(row["value"], "settings", "value", key) if row else default

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value under ``key`` (replacing the old one)."""
        if not isinstance(key, str) or not key:
            raise CvlabError("BadRequestInvalid", "A setting key must be non-empty text.")
        try:
            text = json.dumps(value)
        except TypeError as e:
            raise CvlabError("BadRequestInvalid", f"Setting {key!r} must be JSON-serialisable: {e}.") from None
        with self._tx() as c:
            c.execute("INSERT INTO settings(key, value) VALUES (?, ?) "
                      "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, text))

    def get_or_make_setting(self, key: str, make) -> Any:
        """The stored value of ``key``; on first use ``make()``'s, stored (a service's keys and secrets). Stored
        with the reserve, like opening: `cvlab serve` must start on a full disk, it is how a learner frees space."""
        value = self.get_setting(key)
        if not value:
            value = make()
            self._store_made_setting(key, value)
        return value

    @uses_reserve
    def _store_made_setting(self, key: str, value: Any) -> None:
        self.set_setting(key, value)

    def delete_setting(self, key: str) -> None:
        """Forget a setting (nothing happens when it is not set)."""
        with self._tx() as c:
            c.execute("DELETE FROM settings WHERE key = ?", (key,))

    @property
    def tier(self) -> str:
        """The pricing tier whose limits apply: ``"S0"`` (standard, the default) or ``"F0"`` (free)."""
        return self.get_setting("tier", "S0")

    def set_tier(self, tier: str) -> None:
        """F0 (free) or S0 (standard): the limits of rules.LIMITS that apply from now on."""
        self.set_setting("tier", rules.check_tier(tier))

    def add_usage(self, kind: str, n: int = 1, when: datetime | None = None) -> int:
        """Count `n` uses of `kind` (e.g. "predictions") in the current UTC month; returns the month's total."""
        month = (when or _now()).strftime("%Y-%m")
        with self._tx() as c:
            c.execute("INSERT INTO usage(month, kind, count) VALUES (?, ?, ?) "
                      "ON CONFLICT(month, kind) DO UPDATE SET count = count + excluded.count", (month, kind, n))
            return c.execute("SELECT count FROM usage WHERE month = ? AND kind = ?", (month, kind)).fetchone()[0]

    def get_usage(self, kind: str, month: str | None = None) -> int:
        """How many uses of ``kind`` this UTC month (or ``month`` as ``YYYY-MM``) counted."""
        month = month or _now().strftime("%Y-%m")
        row = self._q1("SELECT count FROM usage WHERE month = ? AND kind = ?", (month, kind))
        return row[0] if row else 0

    def check_prediction_quota(self, n: int = 1) -> None:
        """Raise BadRequestExceededQuota when `n` more predictions would pass this month's limit for the tier."""
        rules.check_limit("predictions_per_month", self.tier, self.get_usage("predictions"), n)

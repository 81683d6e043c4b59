"""The queue page's chip counts and run list, kept for a few seconds.

Counting every chip reads every item awaiting review (tens of milliseconds at a hundred thousand), while
the page itself reads one page: so the counts are recomputed at most every ``max_age_s`` seconds, once
for everybody (the personal chips, "approved by me" and "waiting for a second approver", once per
reviewer). While one request recomputes them, the others are answered with the previous figures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from relicflow.catalogue import Catalogue
from relicflow.catalogue.review_queue import CHIPS, PERSONAL_CHIPS

log = logging.getLogger("relicflow.review_ui")

SHARED_CHIPS = [name for name in CHIPS if name not in PERSONAL_CHIPS] + ["quarantined"]


@dataclass
class _Entry:
    value: Any = None
    at: float = float("-inf")
    refreshing: bool = False


@dataclass
class QueueCounts:
    catalogue: Catalogue
    max_age_s: float = 10.0
    _entries: dict[Any, _Entry] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
            fresh = time.monotonic() - entry.at < self.max_age_s
            if fresh or (entry.refreshing and entry.value is not None):
                return entry.value
            entry.refreshing = True
        try:
            value = compute()
        except BaseException:
            with self._lock:
                entry.refreshing = False
            raise
        with self._lock:
            entry.value, entry.at, entry.refreshing = value, time.monotonic(), False
        return value

    def counts(self, user_id: int) -> dict[str, int]:
        """Every chip's count (and ``quarantined``), at most ``max_age_s`` old."""
        shared = self._get("shared", lambda: self.catalogue.queue_counts(user_id=user_id, chips=SHARED_CHIPS))
        personal = self._get(("user", user_id), lambda: self.catalogue.queue_counts(user_id=user_id, chips=PERSONAL_CHIPS))
        return {**shared, **personal}

    def runs(self) -> list[int]:
        return self._get("runs", self.catalogue.queue_runs)  # type: ignore[no-any-return]

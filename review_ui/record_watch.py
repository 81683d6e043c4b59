"""Keeps the review app's administrators told whether the review record still holds.

A thread re-verifies the record (``relicflow.audit_record.verify_record``) when the app starts and every
``audit_verify_interval_s``, and anchors its head when it holds: these are `relicflow serve`'s scheduled
checks. Pages read the last report, so no request ever waits for a verification.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from relicflow.audit_record import RecordReport, anchor_record, verify_record

if TYPE_CHECKING:
    from relicflow.catalogue import Catalogue
    from relicflow.storage import ObjectStore

log = logging.getLogger("relicflow.review_ui")


class RecordWatch:
    def __init__(self, catalogue: Catalogue, store: ObjectStore, *, interval_s: float) -> None:
        self._catalogue = catalogue
        self._store = store
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: RecordReport | None = None
        self.failed_to_check: str | None = None
        self.checked = threading.Event()  # set after the first check, whatever it found

    def check_now(self) -> RecordReport | None:
        try:
            self.last = verify_record(self._catalogue, self._store)
            self.failed_to_check = None
            if self.last.ok:
                anchor_record(self._catalogue, self._store, reason="scheduled check", logger=log)
        except Exception as exc:  # the catalogue or store is unreachable: say so, keep the last report
            log.exception("could not verify the review record")
            self.failed_to_check = str(exc)
        self.checked.set()
        return self.last

    def start(self) -> None:
        def loop() -> None:
            while True:
                self.check_now()
                if self._stop.wait(self._interval_s):
                    return

        self._thread = threading.Thread(target=loop, name="record-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    @property
    def alert(self) -> str | None:
        """English summary of what is wrong, or None while the record holds (or was not checked yet)."""
        if self.last is not None and not self.last.ok:
            return self.last.summary()
        return None

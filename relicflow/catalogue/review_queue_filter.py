"""What a reviewer narrows the review queue to, and the page cursors: plain values, checked when made.

Everything here is independent of the database; the SQL that applies a filter is in
:mod:`relicflow.catalogue.review_queue_sql`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relicflow.catalogue.models import ItemStatus
from relicflow.errors import QueueQueryInvalid
from tasks.relic_grade import CANONICAL_GRADES

AWAITING = ItemStatus.awaiting_review.value
# status chips: awaiting review; of those, the ones back after a send-back or a record correction; every undecided item
QUEUE_STATUSES = ("awaiting_review", "resubmitted", "undecided")
UNDECIDED_STATUSES = (ItemStatus.received.value, ItemStatus.processed.value, AWAITING, ItemStatus.resubmitted.value)
SORTS = ("oldest", "newest", "accession", "run")
# what the catalogue records as compliance-relevant before an item may be minted (tasks/mint_eligibility.py):
# a graded relic that needs two reviewers' approvals; a catalogue record not (wholly) from the accession sheet
COMPLIANCE_FLAGS = ("two_approvals", "record_incomplete")
# decided by me (my approval counts, another is needed) / waiting for a second approver (one counts, not mine)
APPROVAL_FILTERS = ("mine", "second")
GRADES = CANONICAL_GRADES
MAX_SEARCH_CHARS = 200
MAX_PAGE_SIZE = 500
MAX_ID = 2**31 - 1  # PostgreSQL integer columns


@dataclass(frozen=True)
class QueueFilter:
    """What the reviewer narrowed the queue to; refuses values it does not know (QueueQueryInvalid)."""

    status: str = AWAITING
    run_id: int | None = None
    grade: str | None = None
    has_warnings: bool = False
    has_duplicates: bool = False
    compliance: str | None = None
    approval: str | None = None
    search: str = ""

    def __post_init__(self) -> None:
        if self.status not in QUEUE_STATUSES:
            raise QueueQueryInvalid("status", f"unknown queue status {self.status!r}; one of {', '.join(QUEUE_STATUSES)}")
        if self.run_id is not None and (isinstance(self.run_id, bool) or not 0 < self.run_id <= MAX_ID):
            raise QueueQueryInvalid("run", f"ingest run id {self.run_id!r} is not a positive number")
        if self.grade is not None and self.grade not in GRADES:
            raise QueueQueryInvalid("grade", f"unknown grade {self.grade!r}; one of {', '.join(GRADES)}")
        if self.compliance is not None and self.compliance not in COMPLIANCE_FLAGS:
            raise QueueQueryInvalid("compliance", f"unknown compliance flag {self.compliance!r}")
        if self.approval is not None and self.approval not in APPROVAL_FILTERS:
            raise QueueQueryInvalid("approval", f"unknown approval filter {self.approval!r}")
        if len(self.search) > MAX_SEARCH_CHARS or any(ord(c) < 32 for c in self.search):
            raise QueueQueryInvalid("search", f"search text longer than {MAX_SEARCH_CHARS} characters or with control characters")


CHIPS: dict[str, QueueFilter] = {
    "awaiting_review": QueueFilter(), "resubmitted": QueueFilter(status="resubmitted"),
    "undecided": QueueFilter(status="undecided"), "warnings": QueueFilter(has_warnings=True),
    "duplicates": QueueFilter(has_duplicates=True),
    **{flag: QueueFilter(compliance=flag) for flag in COMPLIANCE_FLAGS},
    **{kind: QueueFilter(approval=kind) for kind in APPROVAL_FILTERS},
}
PERSONAL_CHIPS = APPROVAL_FILTERS  # their counts depend on who asks


def search_pattern(text: str) -> str:
    """The LIKE pattern for "contains ``text``": %, _ and the escape character taken literally."""
    return "%" + text.strip().replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values), separators=(",", ":"), ensure_ascii=False).encode()).decode().rstrip("=")


def decode_cursor(token: str, sort: str) -> list[Any]:
    """The sort key a cursor names; QueueQueryInvalid for anything this sort's cursor could not be."""
    bad = QueueQueryInvalid("cursor", "the page link is damaged or belongs to another sort order")
    if len(token) > 600:
        raise bad
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    kinds: tuple[type, ...] = (int,) if sort in ("oldest", "newest") else ((str, int) if sort == "accession" else (int, int))
    if (not isinstance(values, list) or len(values) != len(kinds)
            or not all(isinstance(v, k) and not isinstance(v, bool) for v, k in zip(values, kinds))):
        raise bad
    if not 0 <= values[-1] <= MAX_ID or (sort == "run" and not 0 <= values[0] <= MAX_ID):
        raise bad
    return values

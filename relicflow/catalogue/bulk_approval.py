"""Bulk approval: many plain items approved from one confirmation page, each as its own decision.

Bulk approval is for the uneventful majority of a batch. An item that needs a reviewer's eyes on its
own never goes through it: a graded relic (it needs two reviewers' approvals, each given on its own
page), an item with a quality warning or a near-duplicate candidate open, an item no longer awaiting
review, an item the reviewer's own ingest run brought in or changed. The confirmation page lists what will be approved and what is refused and why;
each approved item is then one ordinary decision (its own row and chained audit entry, bound to what
the confirmation page showed of it), so every rule of :meth:`ReviewOperations.record_decision` applies.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from relicflow.catalogue.models import Item, ItemStatus
from relicflow.catalogue.objects import seen_now
from relicflow.catalogue.reviews import handlers_in
from relicflow.errors import OwnItemRefused, ReviewError
from tasks.object_views import seen_digest

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue

log = logging.getLogger("relicflow.catalogue")

# Stable codes of why an item is left out of a bulk approval (messages: web.bulk.refused.<code>).
REFUSAL_CODES = ("not_found", "not_awaiting_review", "needs_second_approver", "own_item", "unresolved_warnings",
                 "duplicate_candidates", "object_changed", "not_recorded")


def bulk_refusal(*, status: str, required_approvals: int, open_warnings: int, duplicate_candidates: int,
                 own_item: bool = False) -> str | None:
    """Why an item may not be approved in bulk (a code of REFUSAL_CODES), or None when it may. ``own_item``:
    the reviewer's own ingest run brought it in or changed it (nobody approves their own work)."""
    if status != ItemStatus.awaiting_review.value:
        return "not_awaiting_review"
    if required_approvals > 1:
        return "needs_second_approver"
    if own_item:
        return "own_item"
    if open_warnings:
        return "unresolved_warnings"
    if duplicate_candidates:
        return "duplicate_candidates"
    return None


@dataclass(frozen=True)
class BulkEntry:
    item_id: int
    accession_number: str | None
    title: str | None
    seen_digest: str  # what the confirmation page shows of it; the decision binds to this
    refusal: str | None = None  # None: will be approved


@dataclass(frozen=True)
class BulkPlan:
    entries: list[BulkEntry]

    @property
    def accepted(self) -> list[BulkEntry]:
        return [e for e in self.entries if e.refusal is None]

    @property
    def refused(self) -> list[BulkEntry]:
        return [e for e in self.entries if e.refusal is not None]


@dataclass(frozen=True)
class BulkResult:
    approved: list[int]
    refused: dict[int, str]  # item id -> refusal code, for items that changed between page and confirmation


class BulkApprovalOperations:
    def awaiting_count(self: Catalogue, *, ingest_run_id: int) -> int:  # type: ignore[misc]
        with self.read_session() as s:
            return s.scalar(select(func.count(Item.id)).where(Item.ingest_run_id == ingest_run_id,
                                                              Item.status == ItemStatus.awaiting_review.value)) or 0

    def bulk_approval_plan(self: Catalogue, *, item_ids: Sequence[int] = (),  # type: ignore[misc]
                           ingest_run_id: int | None = None, reviewer: str | None = None) -> BulkPlan:
        """What a bulk approval of ``item_ids``, or of the items of ``ingest_run_id`` awaiting review, would do.
        The caller bounds the set (the review app refuses more than ``bulk_approve_max`` items)."""
        if ingest_run_id is not None:
            items = self.items(status=ItemStatus.awaiting_review.value, ingest_run_id=ingest_run_id)
        else:
            items = self.items(ids=sorted(set(item_ids)))
        found = {item.id for item in items}
        with self.read_session() as s:
            seen = {item.id: seen_now(s, item) for item in items}
            own = {item.id for item in items if reviewer is not None and reviewer in handlers_in(s, s.get(Item, item.id))}
        entries = [BulkEntry(i, None, None, "", "not_found") for i in sorted(set(item_ids) - found)]
        for item in items:
            current = {image.sha256 for image in item.current_images}
            open_warnings = [w for w in item.warnings if (w.details or {}).get("image_sha256") in (None, *current)]
            refusal = bulk_refusal(status=item.status, required_approvals=item.required_approvals, open_warnings=len(open_warnings),
                                   duplicate_candidates=len(item.duplicate_candidates), own_item=item.id in own)
            entries.append(BulkEntry(item.id, item.accession_number, item.title, seen_digest(seen[item.id]), refusal))
        return BulkPlan(sorted(entries, key=lambda e: e.item_id))

    def bulk_approve(self: Catalogue, confirmed: dict[int, str], *, reviewer_id: int, reviewer: str) -> BulkResult:  # type: ignore[misc]
        """Approve each item of ``confirmed`` (item id -> the seen digest its confirmation page showed), one
        decision each. An item that changed since (a rescan, a warning, another decision) is refused, not
        approved on what the reviewer did not see; the others go on."""
        plan = {e.item_id: e for e in self.bulk_approval_plan(item_ids=list(confirmed), reviewer=reviewer).entries}
        approved: list[int] = []
        refused: dict[int, str] = {}
        for item_id, digest in sorted(confirmed.items()):
            entry = plan[item_id]
            if entry.refusal is not None:
                refused[item_id] = entry.refusal
                continue
            if entry.seen_digest != digest:
                refused[item_id] = "object_changed"
                continue
            try:
                self.record_decision(item_id, reviewer_id=reviewer_id, decision="approve", seen_digest=digest)
            except OwnItemRefused:
                refused[item_id] = "own_item"
                continue
            except ReviewError as exc:  # e.g. decided by someone else a moment ago; the others go on
                log.warning("bulk approval of item %s not recorded: %s", item_id, exc)
                refused[item_id] = "not_recorded"
                continue
            approved.append(item_id)
        return BulkResult(approved, refused)

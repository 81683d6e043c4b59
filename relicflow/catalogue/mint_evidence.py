"""The record the mint rules read, loaded from the catalogue as the plain data of tasks/mint_eligibility.py.

Decisions come from both places they are written: the review_decisions rows and the audit log's
``review:<decision>`` entries (whose details carry decision_id, reason, image_sha256, and where the
catalogue writes them reviewer_id and decided_at); status changes from the ``status:<to>`` entries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from relicflow.catalogue.models import AuditEntry, Image, Item, MetadataRecord, MintBatchItem, ReviewDecision, User
from schemas.issuer import MintItem
from tasks.object_views import ImageVersion, seen_state
from tasks.mint_eligibility import DecisionEntry, DecisionRow, Eligible, MintRecord, StatusEntry

# A decided_at in an audit entry that cannot be read: far from any row's time, so it shows as a mismatch.
_UNREADABLE_TIME = datetime.min.replace(tzinfo=timezone.utc)


def load_mint_records(session: Session, item_ids: list[int], *,
                      sealed: Callable[[AuditEntry], bool] | None = None) -> dict[int, MintRecord]:
    """The MintRecord of each existing item of ``item_ids``, in six queries.

    What will be sent is every current image of the object (``seen``); approvals count only when they
    were made on exactly that and the same record version.

    ``sealed`` vouches for each audit entry (its HMAC seal); an entry it refuses is not evidence, so the
    decision it records counts as unrecorded and the item is held.
    """
    items = {i.id: i for i in session.scalars(select(Item).where(Item.id.in_(item_ids)))}
    current: dict[int, list[ImageVersion]] = {}
    for row in session.execute(select(Image.item_id, Image.id, Image.view, Image.view_label, Image.version, Image.sha256)
                               .where(Image.item_id.in_(item_ids), Image.replaced_by_image_id.is_(None))):
        current.setdefault(row[0], []).append(ImageVersion(*row[1:]))
    seen = {item_id: seen_state(current.get(item_id, []), item.record_version or 1) for item_id, item in items.items()}
    sheets: dict[int, dict[str, Any]] = {}
    q = select(MetadataRecord.item_id, MetadataRecord.data).where(
        MetadataRecord.item_id.in_(item_ids), MetadataRecord.source == "accession_sheet").order_by(MetadataRecord.id)
    for item_id, data in session.execute(q):
        sheets[item_id] = data if isinstance(data, dict) else {}
    rows: dict[int, list[DecisionRow]] = {}
    q2 = (select(ReviewDecision, User.username).outerjoin(User, User.id == ReviewDecision.reviewer_id)
          .where(ReviewDecision.item_id.in_(item_ids)).order_by(ReviewDecision.id))
    for d, username in session.execute(q2):
        rows.setdefault(d.item_id, []).append(DecisionRow(id=d.id, reviewer_id=d.reviewer_id, reviewer=username, decision=d.decision,
                                                          reason=d.reason or "", image_sha256=d.image_sha256, decided_at=d.decided_at,
                                                          seen=d.seen))
    entries: dict[int, list[DecisionEntry]] = {}
    statuses: dict[int, list[StatusEntry]] = {}
    q3 = (select(AuditEntry).where(AuditEntry.item_id.in_(item_ids),
                                   or_(AuditEntry.action.like("review:%"), AuditEntry.action.like("status:%"))).order_by(AuditEntry.id))
    for e in session.scalars(q3):
        if sealed is not None and not sealed(e):
            continue
        kind, _, what = e.action.partition(":")
        if kind == "status":
            statuses.setdefault(e.item_id, []).append(StatusEntry(entry_id=e.id, to_status=what, at=e.at,
                                                                   from_status=(e.details or {}).get("from")))  # type: ignore[arg-type]
        else:
            entries.setdefault(e.item_id, []).append(_decision_entry(e, what))  # type: ignore[arg-type]
    batched = set(session.scalars(select(MintBatchItem.item_id).where(MintBatchItem.item_id.in_(item_ids))))
    return {
        item_id: MintRecord(
            item_id=item_id, status=item.status,
            image_sha256=seen[item_id]["images"][0]["sha256"] if seen[item_id]["images"] else None,
            required_approvals=item.required_approvals, grades=(item.grade, sheets.get(item_id, {}).get("grade")),
            accession_number=item.accession_number, accession_number_source=item.accession_number_source,
            sheet_record=sheets.get(item_id), quarantine_code=item.quarantine_code, in_batch=item_id in batched,
            rows=tuple(rows.get(item_id, ())), entries=tuple(entries.get(item_id, ())), status_entries=tuple(statuses.get(item_id, ())),
            seen=seen[item_id], addition_to=item.addition_to_item_id,
        )
        for item_id, item in items.items()
    }


def _decision_entry(e: AuditEntry, decision: str) -> DecisionEntry:
    details = e.details if isinstance(e.details, dict) else {}
    return DecisionEntry(
        entry_id=e.id, decision=decision, actor=e.actor, at=e.at, decision_id=_int(details.get("decision_id")),
        reason=details.get("reason") if isinstance(details.get("reason"), str) else None,
        image_sha256=details.get("image_sha256"), reviewer_id=_int(details.get("reviewer_id")),
        decided_at=_time(details["decided_at"]) if details.get("decided_at") is not None else None,
        seen=details["seen"] if isinstance(details.get("seen"), dict) else None,
    )


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _time(value: Any) -> datetime:
    try:
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return _UNREADABLE_TIME
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def attests(built: MintItem, record: MintRecord, verdict: Eligible) -> bool:
    """Whether a body built earlier still says what the record says now (image, number, approvals)."""
    review = built.review
    sent = [image.sha256 for image in built.images] or [built.image_sha256]
    return (built.image_sha256 == record.image_sha256 and sent == [i["sha256"] for i in record.seen.get("images", [])]
            and built.accession_number == record.accession_number
            and review.decision_ids == [a.decision_id for a in verdict.approvals]
            and review.approved_by == [a.reviewer for a in verdict.approvals]
            and review.approved_at == max(a.decided_at for a in verdict.approvals))


def jsonable(details: dict[str, Any]) -> dict[str, Any]:
    """Hold details as the audit log stores them (JSON: lists, strings, numbers)."""
    return {k: (list(v) if isinstance(v, (tuple, set)) else v) for k, v in details.items()}

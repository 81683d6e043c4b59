"""What the audit entries of decisions and status changes carry, so the entry alone can vouch for the row.

The writers (reviews, transitions, intake) and the record check (``record_check``) share these, so the
two never disagree about what an entry says.
"""

from __future__ import annotations

from typing import Any

from relicflow.catalogue.models import Item, ReviewDecision


def decision_details(row: ReviewDecision) -> dict[str, Any]:
    """A decision's whole content (the row must be flushed: id and decided_at are set)."""
    details = {"decision_id": row.id, "reviewer_id": row.reviewer_id, "decision": row.decision, "reason": row.reason,
               "image_sha256": row.image_sha256, "decided_at": row.decided_at.isoformat()}
    if row.seen is not None:  # every image version and the record version the reviewer was shown
        details["seen"] = row.seen
    return details


def record_snapshot(item: Item, *, image_sha256: str) -> dict[str, Any]:
    """The catalogue record a reviewer is shown, as it was when the item went to review: the rules the
    mint applies (who must approve, is there a record) are read against this, not against columns that
    could be edited afterwards."""
    return {"accession_number": item.accession_number, "accession_number_source": item.accession_number_source,
            "title": item.title, "grade": item.grade, "required_approvals": item.required_approvals,
            "record_version": item.record_version or 1, "image_sha256": image_sha256}

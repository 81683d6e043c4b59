"""Review decisions and the gate's view of a batch.

A decision is valid only for the item's current image version, only while the item awaits review, and
graded relics need approvals from as many distinct reviewers as ``Item.required_approvals`` says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from relicflow.catalogue.models import Image, IngestRun, Item, ItemStatus, ReviewDecision, Role, User
from relicflow.catalogue.record_entries import decision_details
from relicflow.catalogue.reopening import decision_floor_in
from relicflow.errors import ReviewError

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue

DECISIONS = ("approve", "reject", "send_back")
UNDECIDED = (ItemStatus.received.value, ItemStatus.processed.value, ItemStatus.awaiting_review.value, ItemStatus.resubmitted.value)


class ReviewOperations:
    def record_decision(self: Catalogue, item_id: int, *, reviewer_id: int, decision: str, reason: str = "") -> ItemStatus:  # type: ignore[misc]
        """Commit one reviewer's decision; returns the item's status afterwards."""
        if decision not in DECISIONS:
            raise ReviewError(f"unknown decision {decision!r}")
        reason = reason.strip()
        if decision in ("reject", "send_back") and not reason:
            raise ReviewError("a reason is required to reject or send back")
        with self.session() as s:
            item = s.get(Item, item_id)
            if item is None:
                raise ReviewError(f"no item {item_id}")
            reviewer = s.get(User, reviewer_id)
            if reviewer is None or not reviewer.active or reviewer.role not in (Role.reviewer.value, Role.admin.value):
                raise ReviewError("only reviewers may decide on items")
            if item.status != ItemStatus.awaiting_review.value:
                raise ReviewError(f"item {item_id} is not awaiting review (it is {item.status})")
            image_sha = s.scalar(select(Image.sha256).where(Image.item_id == item_id).order_by(Image.version.desc()).limit(1))
            floor = decision_floor_in(s, item_id)  # decisions before an administrator's reopen no longer count
            if decision == "approve":
                already = s.scalar(select(ReviewDecision.id).where(
                    ReviewDecision.item_id == item_id, ReviewDecision.reviewer_id == reviewer_id, ReviewDecision.id > floor,
                    ReviewDecision.decision == "approve", ReviewDecision.image_sha256 == image_sha))
                if already is not None:
                    raise ReviewError("you have already approved this item; a second reviewer must approve it")
            row = ReviewDecision(item_id=item_id, image_sha256=image_sha, reviewer_id=reviewer_id, decision=decision, reason=reason)
            s.add(row)
            s.flush()
            self.audit(s, actor=reviewer.username, action=f"review:{decision}", item_id=item_id,
                       details=decision_details(row))
            if decision == "approve":
                approvals = s.scalar(select(func.count(func.distinct(ReviewDecision.reviewer_id))).where(
                    ReviewDecision.item_id == item_id, ReviewDecision.decision == "approve", ReviewDecision.image_sha256 == image_sha,
                    ReviewDecision.id > floor)) or 0
                if approvals >= item.required_approvals:
                    self._transition(s, item, ItemStatus.approved, actor=reviewer.username, details={"approvals": approvals})
            elif decision == "reject":
                self._transition(s, item, ItemStatus.rejected, actor=reviewer.username, reason=reason)
            else:
                self._transition(s, item, ItemStatus.sent_back, actor=reviewer.username, reason=reason)
            return ItemStatus(item.status)

    def approvals_for(self: Catalogue, item_id: int) -> list[ReviewDecision]:  # type: ignore[misc]
        """The approvals that count for the item's current image version (since its last reopen), oldest first."""
        with self.read_session() as s:
            image_sha = s.scalar(select(Image.sha256).where(Image.item_id == item_id).order_by(Image.version.desc()).limit(1))
            q = select(ReviewDecision).where(ReviewDecision.item_id == item_id, ReviewDecision.decision == "approve",
                                             ReviewDecision.image_sha256 == image_sha,
                                             ReviewDecision.id > decision_floor_in(s, item_id)).order_by(ReviewDecision.id)
            rows = list(s.scalars(q))
            for r in rows:
                _ = r.reviewer.username  # load while the session is open
            return rows

    def undecided_count(self: Catalogue, ingest_run_id: int) -> int:  # type: ignore[misc]
        with self.read_session() as s:
            return s.scalar(select(func.count(Item.id)).where(Item.ingest_run_id == ingest_run_id, Item.status.in_(UNDECIDED))) or 0

    def open_gates(self: Catalogue) -> list[IngestRun]:  # type: ignore[misc]
        """Ingest runs whose review gate was started and has not completed: what reconciliation watches."""
        with self.read_session() as s:
            q = select(IngestRun).where(IngestRun.gate_flow_run_id.is_not(None), IngestRun.gate_completed_at.is_(None))
            return list(s.scalars(q.order_by(IngestRun.id)))

    def gates_ready_to_resume(self: Catalogue) -> list[IngestRun]:  # type: ignore[misc]
        """Open gates whose every item has been decided: their gate run should finish now."""
        return [run for run in self.open_gates() if self.undecided_count(run.id) == 0]

"""Review decisions and the gate's view of a batch.

A decision binds to what the reviewer saw (every current image version and the record version:
``seen``); it is valid only while the item awaits review, and graded relics need approvals of the same
``seen`` from as many distinct reviewers as ``Item.required_approvals`` says. A form that carries the
digest of what its page showed is refused when the object changed meanwhile (a rescan arrived).

Who may decide is relicflow/roles.py's matrix: any approval after the first of an item needing two or more
is a senior reviewer's; and nobody approves an item that an ingest run they started brought into the
catalogue or changed (a rescan, a corrected sheet row): :meth:`ReviewOperations.item_handlers`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relicflow.catalogue.models import AuditEntry, IngestRun, Item, ItemStatus, ReviewDecision, User
from relicflow.catalogue.objects import seen_now
from relicflow.catalogue.record_entries import decision_details
from relicflow.catalogue.reopening import decision_floor_in
from tasks.object_views import decided_on, seen_digest as digest_of
from relicflow.errors import OwnItemRefused, ReviewError, SecondApprovalRefused
from relicflow.roles import Action, allowed

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue

DECISIONS = ("approve", "reject", "send_back")
UNDECIDED = (ItemStatus.received.value, ItemStatus.processed.value, ItemStatus.awaiting_review.value, ItemStatus.resubmitted.value)


def _decided_on(decision: ReviewDecision, seen: dict[str, Any]) -> bool:
    return decided_on(decision.seen, decision.image_sha256, seen)


def handler_runs_in(s: Session, item: Item) -> set[int]:
    """The ingest runs that brought the item into the catalogue or changed it: its own run, every run that
    took it over (``ingest:adopt``: a rescan, a corrected sheet row, a joined photograph), and the runs of
    the scans that joined it."""
    runs = {item.ingest_run_id} if item.ingest_run_id is not None else set()
    for details in s.scalars(select(AuditEntry.details).where(AuditEntry.item_id == item.id, AuditEntry.action == "ingest:adopt")):
        runs.update(r for r in ((details or {}).get("from_run"), (details or {}).get("to_run")) if isinstance(r, int))
    runs.update(r for r in s.scalars(select(Item.ingest_run_id).where(Item.superseded_by_item_id == item.id)) if r is not None)
    return runs


def handlers_in(s: Session, item: Item) -> dict[str, list[int]]:
    """Operator name → the runs of theirs that brought the item in or changed it (runs without one left out)."""
    runs = handler_runs_in(s, item)
    found: dict[str, list[int]] = {}
    if runs:
        for run_id, operator in s.execute(select(IngestRun.id, IngestRun.operator).where(IngestRun.id.in_(runs),
                                                                                            IngestRun.operator.is_not(None))
                                          .order_by(IngestRun.id)):
            found.setdefault(operator, []).append(run_id)
    return found


class ReviewOperations:
    def record_decision(self: Catalogue, item_id: int, *, reviewer_id: int, decision: str, reason: str = "",  # type: ignore[misc]
                        seen_digest: str | None = None) -> ItemStatus:
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
            if reviewer is None or not reviewer.active or not allowed(reviewer.role, Action.item_decide):
                raise ReviewError("only reviewers may decide on items")
            if item.status != ItemStatus.awaiting_review.value:
                raise ReviewError(f"item {item_id} is not awaiting review (it is {item.status})")
            seen = seen_now(s, item)
            if seen_digest is not None and seen_digest != digest_of(seen):
                raise ReviewError("the object changed while you were looking at it (a new photograph or record version "
                                  "arrived); look at it again before deciding")
            image_sha = seen["images"][0]["sha256"] if seen["images"] else None
            floor = decision_floor_in(s, item_id)  # decisions before an administrator's reopen no longer count
            same_seen = [d for d in s.scalars(select(ReviewDecision).where(ReviewDecision.item_id == item_id, ReviewDecision.id > floor,
                                                                          ReviewDecision.decision == "approve"))
                         if _decided_on(d, seen)]
            if decision == "approve" and any(d.reviewer_id == reviewer_id for d in same_seen):
                raise ReviewError("you have already approved this item; a second reviewer must approve it")
            if decision == "approve" and item.required_approvals >= 2 and same_seen \
                    and not allowed(reviewer.role, Action.item_second_approval):
                raise SecondApprovalRefused(f"item {item_id} needs {item.required_approvals} approvals and has "
                                            f"{len({d.reviewer_id for d in same_seen})}; only a senior reviewer may give a further one")
            own_runs = handlers_in(s, item).get(reviewer.username) if decision == "approve" else None
            if own_runs:
                raise OwnItemRefused(f"{reviewer.username} started ingest run(s) {', '.join(map(str, own_runs))}, which brought "
                                     f"item {item_id} into the catalogue or changed it; another reviewer must approve it", own_runs)
            row = ReviewDecision(item_id=item_id, image_sha256=image_sha, reviewer_id=reviewer_id, decision=decision, reason=reason,
                                 seen=seen)
            s.add(row)
            s.flush()
            self.audit(s, actor=reviewer.username, action=f"review:{decision}", item_id=item_id,
                       details=decision_details(row))
            if decision == "approve":
                approvals = len({d.reviewer_id for d in same_seen} | {reviewer_id})
                if approvals >= item.required_approvals:
                    self._transition(s, item, ItemStatus.approved, actor=reviewer.username, details={"approvals": approvals})
            elif decision == "reject":
                self._transition(s, item, ItemStatus.rejected, actor=reviewer.username, reason=reason)
            else:
                self._transition(s, item, ItemStatus.sent_back, actor=reviewer.username, reason=reason)
            return ItemStatus(item.status)

    def item_handlers(self: Catalogue, item_id: int) -> dict[str, list[int]]:  # type: ignore[misc]
        """Who brought the item into the catalogue or changed it: operator name → their ingest runs."""
        with self.read_session() as s:
            item = s.get(Item, item_id)
            return handlers_in(s, item) if item is not None else {}

    def approvals_for(self: Catalogue, item_id: int) -> list[ReviewDecision]:  # type: ignore[misc]
        """The approvals that count for what the item now shows (its current images and record) since its last reopen,
        oldest first."""
        with self.read_session() as s:
            item = s.get(Item, item_id)
            if item is None:
                return []
            seen = seen_now(s, item)
            q = select(ReviewDecision).where(ReviewDecision.item_id == item_id, ReviewDecision.decision == "approve",
                                             ReviewDecision.id > decision_floor_in(s, item_id)).order_by(ReviewDecision.id)
            rows = [d for d in s.scalars(q) if _decided_on(d, seen)]
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

    def runs_awaiting_a_gate(self: Catalogue) -> list[IngestRun]:  # type: ignore[misc]
        """Finished ingest runs with items a reviewer can decide and no gate ever started.

        The ingest run starts its own gate when it ends; these are the runs whose start found no gate
        deployment (a one-off `relicflow ingest` while serve was starting or down). Serve adopts them.
        A run whose gate completed is never listed, even if one of its items was reopened since.
        """
        waiting = select(Item.id).where(Item.ingest_run_id == IngestRun.id,
                                        Item.status.in_((ItemStatus.awaiting_review.value, ItemStatus.resubmitted.value)))
        with self.read_session() as s:
            q = select(IngestRun).where(IngestRun.finished_at.is_not(None), IngestRun.gate_flow_run_id.is_(None),
                                        IngestRun.gate_completed_at.is_(None), waiting.exists())
            return list(s.scalars(q.order_by(IngestRun.id)))

    def gates_ready_to_resume(self: Catalogue) -> list[IngestRun]:  # type: ignore[misc]
        """Open gates whose every item has been decided: their gate run should finish now."""
        return [run for run in self.open_gates() if self.undecided_count(run.id) == 0]

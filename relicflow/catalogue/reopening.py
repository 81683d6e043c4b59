"""An administrator reopens a decided item: a mistaken reject, send-back or approval is corrected, audited.

The item goes back to ``awaiting_review`` through one status transition (``status:awaiting_review`` in
the keyed chain, ``details.reopen``, the written reason, the decisions it sets aside). Nothing is
deleted: the earlier decisions stay in the record, but every rule that counts decisions (the
two-reviewer rule here and in :mod:`relicflow.catalogue.reviews`, the mint's
:func:`tasks.mint_eligibility.assess`) counts only those made after the newest reopen. An item in a
mint batch, or that ever was, or that is minted, cannot be reopened: what the issuer received stays as
it was sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from relicflow.catalogue.models import AuditEntry, Item, ItemStatus, MintBatchItem, MintReceipt, ReviewDecision, StatusTransition, User
from relicflow.errors import ReopenRefused
from relicflow.roles import Action, allowed
from tasks.mint_eligibility import REOPENED_FROM

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue

REOPENABLE = tuple(ItemStatus(s) for s in REOPENED_FROM)
_IN_CHUNK = 500


def decision_floors_in(session: Session, item_ids: Sequence[int]) -> dict[int, int]:
    """Per item with a reopen: the highest decision id its newest reopen set aside (decisions above count).

    Read from the chain's entries (``review:*`` carry decision_id, reopens are ``status:awaiting_review``
    from a decided state), the same order the mint's rules use; items never reopened are absent.
    """
    floors: dict[int, int] = {}
    ids = sorted(set(item_ids))
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start:start + _IN_CHUNK]
        newest: dict[int, int] = {}
        q = (select(AuditEntry.item_id, AuditEntry.action, AuditEntry.details)
             .where(AuditEntry.item_id.in_(chunk), or_(AuditEntry.action == "status:awaiting_review", AuditEntry.action.like("review:%")))
             .order_by(AuditEntry.id))
        for item_id, action, details in session.execute(q):
            details = details if isinstance(details, dict) else {}
            if action.startswith("review:"):
                decision_id = details.get("decision_id")
                if isinstance(decision_id, int) and not isinstance(decision_id, bool):
                    newest[item_id] = max(newest.get(item_id, 0), decision_id)
            elif details.get("from") in REOPENED_FROM:
                floors[item_id] = newest.get(item_id, 0)
    return floors


def decision_floor_in(session: Session, item_id: int) -> int:
    return decision_floors_in(session, [item_id]).get(item_id, 0)


class ReopenOperations:
    """Mixed into :class:`~relicflow.catalogue.Catalogue`."""

    def decision_floors(self: Catalogue, item_ids: Sequence[int]) -> dict[int, int]:  # type: ignore[misc]
        with self.read_session() as s:
            return decision_floors_in(s, item_ids)

    def reopen_refusal(self: Catalogue, item_id: int) -> ReopenRefused | None:  # type: ignore[misc]
        """Why this item cannot be reopened now, or None when it can."""
        with self.read_session() as s:
            item = s.get(Item, item_id)
            return _refusal(s, item) if item is not None else ReopenRefused("not_decided", f"no item {item_id}")

    def reopen_decision(self: Catalogue, item_id: int, *, admin_id: int, reason: str) -> ItemStatus:  # type: ignore[misc]
        """Put a rejected, sent-back or approved (never batched) item back to review; returns its new status.

        Raises :class:`ReopenRefused` (nothing written) for a non-administrator, an empty reason or an item
        that cannot be reopened.
        """
        reason = reason.strip()
        with self.session() as s:
            admin = s.get(User, admin_id)
            if admin is None or not admin.active or not allowed(admin.role, Action.item_reopen):
                raise ReopenRefused("not_admin", "only an administrator may reopen a decision")
            if not reason:
                raise ReopenRefused("reason_required", "a reason is required to reopen a decision")
            item = s.get(Item, item_id)
            if item is None:
                raise ReopenRefused("not_decided", f"no item {item_id}")
            refusal = _refusal(s, item)
            if refusal is not None:
                raise refusal
            set_aside = list(s.scalars(select(ReviewDecision.id).where(
                ReviewDecision.item_id == item_id, ReviewDecision.id > decision_floor_in(s, item_id)).order_by(ReviewDecision.id)))
            released = {"hold_released": item.mint_hold_code} if item.mint_hold_code else {}
            item.mint_hold_code = item.mint_hold_message_en = item.mint_hold_message_zh = None
            item.mint_hold_at = None
            self._transition(s, item, ItemStatus.awaiting_review, actor=admin.username, reason=reason,
                             details={"reopen": True, "decisions_set_aside": set_aside, **released})
            return ItemStatus(item.status)

    def reopens(self: Catalogue, item_id: int) -> list[StatusTransition]:  # type: ignore[misc]
        """The item's reopens, oldest first (for its history)."""
        with self.read_session() as s:
            q = select(StatusTransition).where(
                StatusTransition.item_id == item_id, StatusTransition.to_status == ItemStatus.awaiting_review.value,
                StatusTransition.from_status.in_(REOPENED_FROM)).order_by(StatusTransition.id)
            return list(s.scalars(q))


def _refusal(s: Session, item: Item) -> ReopenRefused | None:
    status = ItemStatus(item.status)
    if status is ItemStatus.minted:
        return ReopenRefused("minted", f"item {item.id} is minted: its token exists and cannot be taken back")
    if status is ItemStatus.batched:
        return ReopenRefused("batched", f"item {item.id} is in a mint batch sent (or being sent) to the issuer")
    if status not in REOPENABLE:
        return ReopenRefused("not_decided", f"item {item.id} is {status.value}: only rejected, sent-back or approved items are reopened")
    if s.scalar(select(MintBatchItem.batch_id).where(MintBatchItem.item_id == item.id)) is not None \
            or s.scalar(select(MintReceipt.id).where(MintReceipt.item_id == item.id)) is not None \
            or s.scalar(select(StatusTransition.id).where(StatusTransition.item_id == item.id,
                                                          StatusTransition.to_status == ItemStatus.batched.value).limit(1)) is not None:
        return ReopenRefused("was_batched", f"item {item.id} was in a mint batch before; what the issuer received is not reopened")
    return None

"""Which approved items may be batched, decided from the record, and the batch's creation.

No item is batched on its status alone: every approval rule is re-derived from the record
(tasks/mint_eligibility.py) inside the transaction that batches it. An item that breaks one is held
(code and reason kept on the item, audited when first recorded) and stays approved; the others go on.
The batch (with its key, its exact request body and the head of the review record) is committed before
the first attempt to send it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relicflow.catalogue.mint_evidence import attests, jsonable, load_mint_records
from relicflow.catalogue.models import Item, ItemStatus, MintBatch, MintBatchItem, utcnow
from relicflow.errors import CatalogueError
from schemas.issuer import AuditAnchor, MintItem
from tasks.mint_eligibility import Eligible, Hold, MintRecord, assess, hold
from tasks.minting import build_mint_request, item_id_from_ref
from tasks.relic_grade import DEFAULT_TWO_REVIEWER_GRADES

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue

_IN_CHUNK = 500  # ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits


@dataclass
class MintAssessment:
    """Approved items sorted by the rules: eligible ones with their approvals, held ones with why."""

    eligible: list[tuple[int, Eligible]] = field(default_factory=list)
    held: list[tuple[int, Hold]] = field(default_factory=list)


@dataclass
class BatchOutcome:
    """What one batching transaction did; ``batch_id`` is None when no item was left to batch."""

    batch_id: int | None
    batched: list[int]
    held: list[tuple[int, Hold]] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # no longer approved, or its record changed since the body was built


class MintBatchingOperations:
    """Mixed into :class:`~relicflow.catalogue.Catalogue`."""

    # -- the rules, re-derived from the record --------------------------------------------------------

    def mint_records(self: Catalogue, session: Session, item_ids: Sequence[int]) -> dict[int, MintRecord]:  # type: ignore[misc]
        """What the rules need about each item, read in ``session`` in a few queries per 500 items."""
        out: dict[int, MintRecord] = {}
        for start in range(0, len(item_ids), _IN_CHUNK):
            out.update(load_mint_records(session, list(item_ids[start:start + _IN_CHUNK]), sealed=self.entry_is_sealed))
        return out

    def assess_for_mint(self: Catalogue, *, two_reviewer_grades: Iterable[str] = DEFAULT_TWO_REVIEWER_GRADES,  # type: ignore[misc]
                        item_ids: Sequence[int] | None = None) -> MintAssessment:
        """Check every approved item (or those of ``item_ids``) against the rules; record the holds."""
        grades = tuple(two_reviewer_grades)
        result = MintAssessment()
        with self.session() as s:
            q = select(Item.id).where(Item.status == ItemStatus.approved.value).order_by(Item.id)
            ids = list(s.scalars(q if item_ids is None else q.where(Item.id.in_(list(item_ids)))))
            records = self.mint_records(s, ids)
            # rows that differ from the sealed chain (a flipped status, an edited grade...) are not evidence
            differs: dict[int, list[str]] = {}
            for d in self.record_disagreements(item_ids=ids):
                differs.setdefault(d.item_id, []).append(f"{d.code}: {d.detail}")
            for item_id in ids:
                verdict = assess(records[item_id], two_reviewer_grades=grades)
                if isinstance(verdict, Eligible) and item_id in differs:  # the rules' own codes say more; this catches the rest
                    verdict = hold("record_not_as_chained", differences=differs[item_id])
                if isinstance(verdict, Eligible):
                    result.eligible.append((item_id, verdict))
                else:
                    self._record_hold(s, s.get_one(Item, item_id), verdict)
                    result.held.append((item_id, verdict))
        return result

    def record_mint_hold(self: Catalogue, item_id: int, hold: Hold) -> None:  # type: ignore[misc]
        """Hold an approved item back for a reason found outside the rules (e.g. its record cannot be sent)."""
        with self.session() as s:
            item = s.get_one(Item, item_id)
            if item.status == ItemStatus.approved.value:
                self._record_hold(s, item, hold)

    def _record_hold(self: Catalogue, s: Session, item: Item, hold: Hold) -> None:  # type: ignore[misc]
        """Keep the reason on the item; audit it when this hold is new (a repeat run adds no entry)."""
        new = item.mint_hold_code != hold.code
        item.mint_hold_code, item.mint_hold_message_en, item.mint_hold_message_zh = hold.code, hold.message_en, hold.message_zh
        if new:
            item.mint_hold_at = utcnow()
            self.audit(s, actor="mint", action="mint:hold", item_id=item.id,
                       details={"code": hold.code, "message_en": hold.message_en, **jsonable(hold.details)})

    # -- batching -------------------------------------------------------------------------------------

    def batch_for_mint(  # type: ignore[misc]
        self: Catalogue, items: Sequence[MintItem], *, batch_ref: str, recipient: str, idempotency_key: str,
        two_reviewer_grades: Iterable[str] = DEFAULT_TWO_REVIEWER_GRADES,
    ) -> BatchOutcome:
        """Re-check each built item against the record and batch those that still pass, in one transaction.

        An item that now breaks a rule is held; one that is no longer approved, or whose image or
        approvals differ from what its body attests, is left out (the next run builds it afresh). The
        request body is built here from the items kept, so it never names an item that was dropped.
        """
        grades = tuple(two_reviewer_grades)
        with self.session() as s:
            self.serialise_writers(s)  # a second mint run waits here, then sees these items batched
            by_id = {item_id_from_ref(m.item_ref): m for m in items}
            records = self.mint_records(s, list(by_id))
            outcome = BatchOutcome(batch_id=None, batched=[])
            kept: list[MintItem] = []
            for item_id, built in by_id.items():
                record = records.get(item_id)
                verdict = assess(record, two_reviewer_grades=grades) if record is not None else None
                if isinstance(verdict, Hold) and record is not None and record.status == ItemStatus.approved.value:
                    self._record_hold(s, s.get_one(Item, item_id), verdict)
                    outcome.held.append((item_id, verdict))
                elif isinstance(verdict, Eligible) and attests(built, record, verdict):  # type: ignore[arg-type]
                    kept.append(built)
                else:
                    outcome.skipped.append(item_id)
            if not kept:
                return outcome
            head = self.chain_head_in(s)  # the body carries the record's head: the issuer holds a copy of it
            request = build_mint_request(batch_ref=batch_ref, recipient=recipient, items=kept,
                                         audit_anchor=AuditAnchor(entry_id=head[0], entry_hash=head[1]) if head else None)
            outcome.batch_id = self._insert_batch(s, item_ids=[item_id_from_ref(m.item_ref) for m in kept], batch_ref=batch_ref,
                                                  idempotency_key=idempotency_key, request_body=request.model_dump(mode="json"),
                                                  request_sha256=hashlib.sha256(request.body_bytes()).hexdigest())
            outcome.batched = [item_id_from_ref(m.item_ref) for m in kept]
            return outcome

    def create_mint_batch(
        self: Catalogue, *, item_ids: Sequence[int], batch_ref: str, idempotency_key: str,  # type: ignore[misc]
        request_body: dict[str, Any], request_sha256: str, two_reviewer_grades: Iterable[str] = DEFAULT_TWO_REVIEWER_GRADES,
    ) -> int:
        """Move the items approved→batched and store the batch, in one transaction, all or nothing.

        Raises if any item is not approved at this moment (e.g. a concurrent mint took it) or breaks an
        approval rule: the gate is the committed record, not whatever list the caller built earlier.
        """
        grades = tuple(two_reviewer_grades)
        with self.session() as s:
            self.serialise_writers(s)
            records = self.mint_records(s, list(item_ids))
            for item_id in item_ids:
                record = records.get(item_id)
                verdict = assess(record, two_reviewer_grades=grades) if record is not None else None
                if record is None or record.status != ItemStatus.approved.value:
                    raise CatalogueError(f"item {item_id} is not approved (it is {record.status if record else 'missing'}); not batched")
                if isinstance(verdict, Hold):
                    raise CatalogueError(f"item {item_id} cannot be minted ({verdict.code}: {verdict.message_en}); not batched")
            return self._insert_batch(s, item_ids=item_ids, batch_ref=batch_ref, idempotency_key=idempotency_key,
                                      request_body=request_body, request_sha256=request_sha256)

    def _insert_batch(self: Catalogue, s: Session, *, item_ids: Sequence[int], batch_ref: str, idempotency_key: str,  # type: ignore[misc]
                      request_body: dict[str, Any], request_sha256: str) -> int:
        batch = MintBatch(batch_ref=batch_ref, idempotency_key=idempotency_key, request_body=request_body, request_sha256=request_sha256)
        s.add(batch)
        s.flush()
        for item_id in item_ids:
            item = s.get_one(Item, item_id)
            if item.status != ItemStatus.approved.value:
                raise CatalogueError(f"item {item_id} is not approved (it is {item.status}); not batched")
            s.add(MintBatchItem(batch_id=batch.id, item_id=item_id))
            released = {"hold_released": item.mint_hold_code} if item.mint_hold_code else {}
            item.mint_hold_code = item.mint_hold_message_en = item.mint_hold_message_zh = None
            item.mint_hold_at = None
            self._transition(s, item, ItemStatus.batched, actor="mint", details={"batch_ref": batch_ref, **released})
        self.audit(s, actor="mint", action="batch:create", details={"batch_ref": batch_ref, "idempotency_key": idempotency_key,
                                                                    "items": list(item_ids), "request_sha256": request_sha256})
        return batch.id

"""Mint batches after they are committed: sending state, receipts, and what the issuer already holds.

The batch (with its key and exact request body) is committed before the first attempt, so a crash at
any point resends the same body under the same key and the issuer can answer with what it already did.

What the issuer holds is recorded exactly once per item: a receipt is checked against the tokens the
catalogue already has (never an IntegrityError halfway through a run), tokens found in other issuer
batches (after a restore from a backup, or a replayed request) are recorded with the batch they came
from, and items the issuer holds nothing for go back to ``approved`` with an audit entry.

Which items go into a batch, and the batch's creation, are ``mint_batching``'s.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from contextlib import contextmanager
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError as SQLIntegrityError
from sqlalchemy.orm import Session

from relicflow.catalogue.models import Item, ItemStatus, MintBatch, MintBatchItem, MintReceipt, utcnow
from relicflow.errors import BadReceipt, CatalogueError

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue

log = logging.getLogger("relicflow.catalogue")

OPEN_BATCH_STATES = ("pending", "failed")
UNSETTLED_BATCH_STATES = ("pending", "failed", "rejected")  # not minted, items may still be batched
RELEASE_TARGETS = (ItemStatus.approved, ItemStatus.rejected)


@dataclass(frozen=True)
class Token:
    """One token to record for one catalogue item; ``issuer_batch_ref`` is where the issuer minted it."""

    item_id: int
    token_id: str
    tx_hash: str
    chain: str
    issuer_batch_ref: str


def _conflict(err: SQLIntegrityError, batch_ref: str) -> BadReceipt:
    return BadReceipt("receipt_conflict", f"the tokens of batch {batch_ref} clash with tokens recorded meanwhile: {err.orig}",
                      f"批次 {batch_ref} 的数字藏品与同时记录的数字藏品冲突：{err.orig}")


class MintOperations:
    def approved_items(self: Catalogue) -> list[Item]:  # type: ignore[misc]
        return self.items(status=ItemStatus.approved.value)

    def open_mint_batches(self: Catalogue) -> list[MintBatch]:  # type: ignore[misc]
        """Batches decided but not yet confirmed by the issuer: resend them as they are."""
        with self.read_session() as s:
            q = select(MintBatch).where(MintBatch.status.in_(OPEN_BATCH_STATES)).order_by(MintBatch.id)
            return list(s.scalars(q))

    def mint_batch(self: Catalogue, batch_id: int) -> MintBatch:  # type: ignore[misc]
        with self.read_session() as s:
            batch = s.get(MintBatch, batch_id)
            if batch is None:
                raise CatalogueError(f"no mint batch {batch_id}")
            _ = [link.item_id for link in batch.item_links]
            return batch

    def mint_batches(self: Catalogue) -> list[MintBatch]:  # type: ignore[misc]
        with self.read_session() as s:
            return list(s.scalars(select(MintBatch).order_by(MintBatch.id)))

    def record_mint_failure(self: Catalogue, batch_id: int, *, error: str, permanent: bool) -> None:  # type: ignore[misc]
        with self.session() as s:
            batch = s.get_one(MintBatch, batch_id)
            batch.attempts += 1
            batch.last_error = error
            batch.status = "rejected" if permanent else "failed"
            self.audit(s, actor="mint", action="batch:failed", details={"batch_ref": batch.batch_ref, "error": error, "permanent": permanent})

    @contextmanager
    def _batch_transaction(self: Catalogue, batch_id: int) -> Iterator[tuple[Session, MintBatch]]:  # type: ignore[misc]
        """One writer transaction on one batch; a token a concurrent writer recorded first is a BadReceipt."""
        batch_ref = "?"
        try:
            with self.session() as s:
                self.serialise_writers(s)
                batch = s.get_one(MintBatch, batch_id)
                batch_ref = batch.batch_ref
                yield s, batch
        except SQLIntegrityError as err:
            raise _conflict(err, batch_ref) from err

    def record_mint_receipt(self: Catalogue, batch_id: int, *, chain: str, tokens: Sequence[tuple[int, str, str]],  # type: ignore[misc]
                            raw: dict[str, Any], actor: str = "mint", source: str = "mint") -> None:
        """Store the issuer's receipt: one token per batched item, then the items are minted.

        Raises :class:`BadReceipt` (nothing recorded) when the receipt gives an item two tokens, one
        token to two items, or a token id the catalogue already holds for another item.
        """
        with self._batch_transaction(batch_id) as (s, batch):
            batch_ref = batch.batch_ref
            expected = {link.item_id for link in batch.item_links}
            got = [item_id for item_id, _, _ in tokens]
            if len(got) != len(set(got)) or set(got) != expected:
                raise BadReceipt("receipt_items_mismatch",
                                 f"the receipt of batch {batch_ref} covers items {sorted(got)} but the batch holds {sorted(expected)}",
                                 f"批次 {batch_ref} 的回执对应藏品 {sorted(got)}，而该批次包含 {sorted(expected)}")
            found = [Token(item_id, token_id, tx_hash, chain, batch_ref) for item_id, token_id, tx_hash in tokens]
            if batch.status == "minted":  # a repeat (e.g. two mint runs sent the same open batch): same receipt is a no-op
                stored = {(r.item_id, r.token_id, r.tx_hash) for r in s.scalars(select(MintReceipt).where(MintReceipt.batch_id == batch_id))}
                if stored != {tuple(t) for t in tokens}:
                    raise BadReceipt("receipt_differs", f"batch {batch_ref} is already minted with other tokens; receipt not recorded",
                                     f"批次 {batch_ref} 已按另一份回执记录为已发行，本回执未记录")
                return
            self._record_tokens(s, batch, found, actor=actor)
            batch.status = "minted"
            batch.attempts += 1
            batch.sent_at = utcnow()
            batch.last_error = None
            self.audit(s, actor=actor, action="batch:minted", details={"batch_ref": batch_ref, "receipt": raw, "source": source})

    def _record_tokens(self: Catalogue, s: Session, batch: MintBatch, tokens: Sequence[Token], *, actor: str) -> list[int]:  # type: ignore[misc]
        """Record ``tokens`` (items of ``batch``) once each; returns the items newly minted.

        An item already recorded with this very token is left as it is (a repeat); any other overlap with
        what the catalogue holds is a :class:`BadReceipt` and the caller's transaction rolls back.
        """
        ref = batch.batch_ref
        twice = sorted({t.token_id for t in tokens if sum(u.token_id == t.token_id for u in tokens) > 1})
        if twice:
            raise BadReceipt("receipt_token_twice", f"batch {ref}: token id {', '.join(twice)} is given to more than one item",
                             f"批次 {ref}：同一数字藏品编号 {', '.join(twice)} 被给了多件藏品")
        by_token = {r.token_id: r for r in s.scalars(select(MintReceipt).where(MintReceipt.token_id.in_([t.token_id for t in tokens])))}
        by_item = {r.item_id: r for r in s.scalars(select(MintReceipt).where(MintReceipt.item_id.in_([t.item_id for t in tokens])))}
        minted: list[int] = []
        for t in tokens:
            held, mine = by_token.get(t.token_id), by_item.get(t.item_id)
            if held is not None and held.item_id != t.item_id:
                raise BadReceipt("token_already_recorded",
                                 f"batch {ref}: token {t.token_id} for item {t.item_id} is already recorded for item {held.item_id}; "
                                 "one token cannot be two relics, so nothing of this batch was recorded",
                                 f"批次 {ref}：藏品 {t.item_id} 的数字藏品编号 {t.token_id} 已记录在藏品 {held.item_id} 名下；"
                                 "一个编号不能对应两件文物，本批次未记录")
            if mine is not None:
                if (mine.token_id, mine.tx_hash) != (t.token_id, t.tx_hash):
                    raise BadReceipt("item_already_minted",
                                     f"batch {ref}: item {t.item_id} already has token {mine.token_id}, the issuer now says {t.token_id}",
                                     f"批次 {ref}：藏品 {t.item_id} 已有数字藏品 {mine.token_id}，发行方现称其为 {t.token_id}")
                continue
            s.add(MintReceipt(batch_id=batch.id, item_id=t.item_id, token_id=t.token_id, tx_hash=t.tx_hash, chain=t.chain,
                              issuer_batch_ref=t.issuer_batch_ref))
            self._transition(s, s.get_one(Item, t.item_id), ItemStatus.minted, actor=actor,
                             details={"token_id": t.token_id, "batch_ref": ref, "issuer_batch_ref": t.issuer_batch_ref})
            minted.append(t.item_id)
        s.flush()
        return minted

    def _unlink(self: Catalogue, s: Session, batch: MintBatch, item_ids: Sequence[int], to: ItemStatus, *,  # type: ignore[misc]
                actor: str, reason: str) -> None:
        """Take items out of ``batch`` (so a later batch may take them) and move them batched → ``to``."""
        for item_id in item_ids:
            self._transition(s, s.get_one(Item, item_id), to, actor=actor, reason=reason, details={"batch_ref": batch.batch_ref})
        if item_ids:
            s.execute(delete(MintBatchItem).where(MintBatchItem.batch_id == batch.id, MintBatchItem.item_id.in_(list(item_ids))))

    def settle_from_issuer(self: Catalogue, batch_id: int, *, tokens: Sequence[Token], reason: str,  # type: ignore[misc]
                           actor: str = "mint") -> dict[str, list[int]]:
        """Close a batch the issuer will never mint as sent (409, or its items minted elsewhere).

        Items the issuer holds a token for are recorded with it; the others return to ``approved`` for a
        later batch. Returns ``{"recorded": [...], "returned": [...]}``.
        """
        with self._batch_transaction(batch_id) as (s, batch):
            batch_ref = batch.batch_ref
            if batch.status not in UNSETTLED_BATCH_STATES:  # settled meanwhile (e.g. by a concurrent run)
                log.info("batch %s is %s already; not settled again", batch_ref, batch.status)
                return {"recorded": [], "returned": []}
            linked = [link.item_id for link in batch.item_links]
            strangers = sorted({t.item_id for t in tokens} - set(linked))
            if strangers:
                raise BadReceipt("token_for_other_item", f"batch {batch_ref}: tokens found for items {strangers} that are not in it",
                                 f"批次 {batch_ref}：找到的数字藏品属于不在该批次中的藏品 {strangers}")
            recorded = self._record_tokens(s, batch, tokens, actor=actor)
            held = {t.item_id for t in tokens}
            returned = [i for i in linked if i not in held]
            self._unlink(s, batch, returned, ItemStatus.approved, actor=actor, reason=reason)
            batch.status = "recovered"
            batch.attempts += 1
            batch.last_error = reason
            self.audit(s, actor=actor, action="batch:recovered", details={
                "batch_ref": batch_ref, "reason": reason, "returned_to_approved": returned,
                "recorded": [{"item_id": t.item_id, "token_id": t.token_id, "tx_hash": t.tx_hash, "chain": t.chain,
                              "issuer_batch_ref": t.issuer_batch_ref} for t in tokens]})
            return {"recorded": recorded, "returned": returned}

    def record_tokens_of_approved(self: Catalogue, tokens: Sequence[Token], *, actor: str) -> int | None:  # type: ignore[misc]
        """Record tokens the issuer holds for items the catalogue still has as ``approved`` (e.g. after a
        restore from a backup taken before their mint): a catalogue batch mirrors them, approved →
        batched → minted, audited. Returns that batch's id (None when there was nothing to record)."""
        if not tokens:
            return None
        batch_ref = f"rf-reconciled-{uuid.uuid4().hex[:12]}"
        body = {"recorded_from_issuer": sorted({t.issuer_batch_ref for t in tokens}), "items": sorted(t.item_id for t in tokens)}
        try:
            with self.session() as s:
                self.serialise_writers(s)
                batch = MintBatch(batch_ref=batch_ref, idempotency_key=f"reconcile-{uuid.uuid4()}", request_body=body,
                                  request_sha256=hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest())
                s.add(batch)
                s.flush()
                for t in tokens:
                    item = s.get(Item, t.item_id)
                    if item is None or item.status != ItemStatus.approved.value:
                        raise CatalogueError(f"item {t.item_id} is {item.status if item else 'missing'}, not approved")
                    s.add(MintBatchItem(batch_id=batch.id, item_id=t.item_id))
                    self._transition(s, item, ItemStatus.batched, actor=actor, reason="token held by the issuer",
                                     details={"batch_ref": batch_ref})
                s.flush()
                self._record_tokens(s, batch, tokens, actor=actor)
                batch.status = "minted"
                batch.sent_at = utcnow()
                self.audit(s, actor=actor, action="batch:reconciled", details={"batch_ref": batch_ref, **body})
                return batch.id
        except SQLIntegrityError as err:
            raise _conflict(err, batch_ref) from err

    def release_batch(self: Catalogue, batch_ref: str, *, to: ItemStatus, actor: str, reason: str) -> list[int]:  # type: ignore[misc]
        """An operator returns the items of a batch the issuer will not mint to ``approved`` or ``rejected``.

        Only for batches not minted; audited with the operator's name and reason. Returns the items moved.
        """
        if to not in RELEASE_TARGETS:
            raise CatalogueError(f"a batch's items can be released to approved or rejected, not {to.value}")
        if not reason.strip():
            raise CatalogueError("a reason is required to release a batch")
        with self.session() as s:
            batch = s.scalar(select(MintBatch).where(MintBatch.batch_ref == batch_ref))
            if batch is None:
                raise CatalogueError(f"no mint batch {batch_ref}")
            if batch.status not in UNSETTLED_BATCH_STATES:
                raise CatalogueError(f"batch {batch_ref} is {batch.status}; only pending, failed or rejected batches can be released")
            items = [link.item_id for link in batch.item_links]
            self._unlink(s, batch, items, to, actor=actor, reason=reason)
            batch.status = "released"
            batch.last_error = f"released by {actor}: {reason}"
            self.audit(s, actor=actor, action="batch:released", details={"batch_ref": batch_ref, "to": to.value,
                                                                          "items": items, "reason": reason})
            return items

    def unsettled_batches(self: Catalogue) -> list[MintBatch]:  # type: ignore[misc]
        """Batches not minted whose items are still batched: open ones and ones the issuer refused."""
        with self.read_session() as s:
            q = select(MintBatch).where(MintBatch.status.in_(UNSETTLED_BATCH_STATES)).order_by(MintBatch.id)
            batches = list(s.scalars(q))
            for batch in batches:
                _ = [link.item_id for link in batch.item_links]
            return [b for b in batches if b.item_links]

    def item_statuses(self: Catalogue) -> dict[int, str]:  # type: ignore[misc]
        """Every item's status, in one light query (reconciliation)."""
        with self.read_session() as s:
            return {item_id: status for item_id, status in s.execute(select(Item.id, Item.status))}

    def receipts(self: Catalogue) -> list[MintReceipt]:  # type: ignore[misc]
        with self.read_session() as s:
            return list(s.scalars(select(MintReceipt).order_by(MintReceipt.id)))

    def batch_overview(self: Catalogue) -> list[dict[str, Any]]:  # type: ignore[misc]
        """One row per batch for `relicflow batches list`: items sent, items still batched in it, tokens."""
        with self.read_session() as s:
            rows = []
            for batch in s.scalars(select(MintBatch).order_by(MintBatch.id)):
                sent = batch.request_body.get("items", []) if isinstance(batch.request_body, dict) else []
                linked = [link.item_id for link in batch.item_links]
                batched = s.scalar(select(func.count(Item.id)).where(Item.id.in_(linked), Item.status == ItemStatus.batched.value)) if linked else 0
                rows.append({"batch_ref": batch.batch_ref, "status": batch.status, "items": len(sent),
                             "batched": batched, "attempts": batch.attempts,
                             "tokens": len(list(s.scalars(select(MintReceipt.id).where(MintReceipt.batch_id == batch.id)))),
                             "created_at": batch.created_at, "last_error": batch.last_error or ""})
            return rows

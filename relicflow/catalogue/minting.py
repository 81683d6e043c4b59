"""Mint batches, their idempotency keys and receipts.

The batch (with its key and exact request body) is committed before the first attempt, so a crash at
any point resends the same body under the same key and the issuer can answer with what it already did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from relicflow.catalogue.models import Item, ItemStatus, MintBatch, MintBatchItem, MintReceipt, utcnow
from relicflow.errors import CatalogueError

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue

OPEN_BATCH_STATES = ("pending", "failed")


class MintOperations:
    def approved_items(self: Catalogue) -> list[Item]:  # type: ignore[misc]
        return self.items(status=ItemStatus.approved.value)

    def create_mint_batch(
        self: Catalogue, *, item_ids: Sequence[int], batch_ref: str, idempotency_key: str,  # type: ignore[misc]
        request_body: dict[str, Any], request_sha256: str,
    ) -> int:
        """Move the items approved→batched and store the batch, in one transaction.

        Raises if any item is not approved at this moment (e.g. a concurrent mint took it): the gate is
        the committed status, not whatever list the caller built earlier.
        """
        with self.session() as s:
            batch = MintBatch(batch_ref=batch_ref, idempotency_key=idempotency_key, request_body=request_body, request_sha256=request_sha256)
            s.add(batch)
            s.flush()
            for item_id in item_ids:
                item = s.get(Item, item_id)
                if item is None or item.status != ItemStatus.approved.value:
                    raise CatalogueError(f"item {item_id} is not approved (it is {item.status if item else 'missing'}); not batched")
                s.add(MintBatchItem(batch_id=batch.id, item_id=item_id))
                self._transition(s, item, ItemStatus.batched, actor="mint", details={"batch_ref": batch_ref})
            self.audit(s, actor="mint", action="batch:create", details={"batch_ref": batch_ref, "idempotency_key": idempotency_key,
                                                                        "items": list(item_ids), "request_sha256": request_sha256})
            return batch.id

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

    def record_mint_receipt(self: Catalogue, batch_id: int, *, chain: str, tokens: Sequence[tuple[int, str, str]], raw: dict[str, Any]) -> None:  # type: ignore[misc]
        """Store the issuer's receipt: one token per batched item, then the items are minted."""
        with self.session() as s:
            batch = s.get_one(MintBatch, batch_id)
            expected = {link.item_id for link in batch.item_links}
            got = {item_id for item_id, _, _ in tokens}
            if got != expected:
                raise CatalogueError(f"receipt for {batch.batch_ref} covers items {sorted(got)} but the batch holds {sorted(expected)}")
            if batch.status == "minted":  # a repeat (e.g. two mint runs sent the same open batch): same receipt is a no-op
                stored = {(r.item_id, r.token_id, r.tx_hash) for r in s.scalars(select(MintReceipt).where(MintReceipt.batch_id == batch_id))}
                if stored != {tuple(t) for t in tokens}:
                    raise CatalogueError(f"batch {batch.batch_ref} is already minted with other tokens; receipt not recorded")
                return
            for item_id, token_id, tx_hash in tokens:
                s.add(MintReceipt(batch_id=batch_id, item_id=item_id, token_id=token_id, tx_hash=tx_hash, chain=chain))
                self._transition(s, s.get_one(Item, item_id), ItemStatus.minted, actor="mint", details={"token_id": token_id})
            batch.status = "minted"
            batch.attempts += 1
            batch.sent_at = utcnow()
            batch.last_error = None
            self.audit(s, actor="mint", action="batch:minted", details={"batch_ref": batch.batch_ref, "receipt": raw})

    def receipts(self: Catalogue) -> list[MintReceipt]:  # type: ignore[misc]
        with self.read_session() as s:
            return list(s.scalars(select(MintReceipt).order_by(MintReceipt.id)))

"""Where an item stands with the issuer: its mint batch and, once minted, its token, for the item page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from relicflow.catalogue.models import MintBatch, MintBatchItem, MintReceipt

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue


@dataclass(frozen=True)
class ItemToken:
    """``token_id`` and the rest of the receipt are None while the batch is not yet minted."""

    batch_ref: str | None
    batch_status: str | None
    sent_at: datetime | None
    token_id: str | None = None
    chain: str | None = None
    tx_hash: str | None = None
    issuer_batch_ref: str | None = None
    minted_at: datetime | None = None


def item_token(catalogue: Catalogue, item_id: int) -> ItemToken | None:
    """The item's receipt (and the batch it came with), else the batch it waits in; None for neither."""
    with catalogue.read_session() as s:
        receipt = s.scalar(select(MintReceipt).where(MintReceipt.item_id == item_id))
        if receipt is not None:
            batch = s.get(MintBatch, receipt.batch_id)
            return ItemToken(batch_ref=batch.batch_ref if batch else None, batch_status=batch.status if batch else None,
                             sent_at=batch.sent_at if batch else None, token_id=receipt.token_id, chain=receipt.chain,
                             tx_hash=receipt.tx_hash, issuer_batch_ref=receipt.issuer_batch_ref, minted_at=receipt.received_at)
        batch = s.scalar(select(MintBatch).join(MintBatchItem, MintBatchItem.batch_id == MintBatch.id).where(MintBatchItem.item_id == item_id))
        if batch is None:
            return None
        return ItemToken(batch_ref=batch.batch_ref, batch_status=batch.status, sent_at=batch.sent_at)

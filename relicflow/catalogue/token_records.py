"""Token id, chain and batch of items, for listings (`relicflow items`) and the item page: one query for
the whole list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.orm import aliased

from relicflow.catalogue.models import Item, MintBatch, MintBatchItem, MintReceipt
from schemas.catalogue import TokenRecord

if TYPE_CHECKING:
    from relicflow.catalogue import Catalogue


def token_records(catalogue: Catalogue, *, status: str | None = None,
                  item_ids: Sequence[int] | None = None) -> dict[int, TokenRecord]:
    """Item id -> its token record, for items with a receipt or a batch (optionally only those in ``status``,
    or of ``item_ids``).

    The receipt names the batch it arrived for; an item still waiting for its receipt is named by the
    batch that holds it. Both are outer-joined in a single statement, however long the list.
    """
    receipt_batch = aliased(MintBatch)
    link_batch = aliased(MintBatch)
    query = (
        select(Item.id, MintReceipt.token_id, MintReceipt.chain, MintReceipt.tx_hash, MintReceipt.issuer_batch_ref,
               MintReceipt.received_at, receipt_batch.batch_ref, receipt_batch.status, receipt_batch.sent_at,
               link_batch.batch_ref, link_batch.status, link_batch.sent_at)
        .select_from(Item)
        .outerjoin(MintReceipt, MintReceipt.item_id == Item.id)
        .outerjoin(receipt_batch, receipt_batch.id == MintReceipt.batch_id)
        .outerjoin(MintBatchItem, MintBatchItem.item_id == Item.id)
        .outerjoin(link_batch, link_batch.id == MintBatchItem.batch_id)
        .where(or_(MintReceipt.id.is_not(None), MintBatchItem.batch_id.is_not(None)))
    )
    if status is not None:
        query = query.where(Item.status == status)
    if item_ids is not None:
        query = query.where(Item.id.in_(list(item_ids)))
    records: dict[int, TokenRecord] = {}
    with catalogue.read_session() as s:
        for (item_id, token_id, chain, tx_hash, issuer_batch_ref, received_at, receipt_ref, receipt_status, receipt_sent,
             link_ref, link_status, link_sent) in s.execute(query):
            records[item_id] = TokenRecord(
                token_id=token_id, chain=chain, tx_hash=tx_hash, issuer_batch_ref=issuer_batch_ref,
                batch_ref=receipt_ref or link_ref, batch_status=receipt_status if receipt_ref else link_status,
                sent_at=receipt_sent if receipt_ref else link_sent, minted_at=received_at)
    return records

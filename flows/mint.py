"""The mint flow: approvals committed in the catalogue → a signed, idempotent batch at the issuer.

Order of effects, each safe to repeat: (1) the metadata documents are written create-only and registered
in the inventory of stored objects (for fixity); (2) the batch, its Idempotency-Key and its exact body
are committed with the items moved approved→batched; (3) the request is sent, retried with the same key
and bytes; (4) the receipt is stored and the items become minted. A crash anywhere leaves an
open batch that the next run resends as it is, so the issuer answers with what it already did instead
of minting twice.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from relicflow.audit_record import anchor_record, require_sound_record
from relicflow.catalogue import Catalogue, StoredObjectRef
from relicflow.catalogue.records import item_record
from relicflow.errors import CatalogueError, IssuerError
from relicflow.issuer_client import IssuerClient
from relicflow.settings import Settings, load_settings
from relicflow.storage import ObjectStore, open_store
from schemas.issuer import MAX_ITEMS_PER_BATCH, AuditAnchor, MintRequest, canonical_json
from tasks.minting import Approval, build_mint_item, build_mint_request, item_id_from_ref, mint_metadata


def prepare_batch(catalogue: Catalogue, store: ObjectStore, *, item_ids: list[int], recipient: str) -> int:
    """Build, publish metadata for, and commit one batch; returns its catalogue id."""
    names = catalogue.usernames()
    items = []
    for item_id in item_ids:
        item = catalogue.item(item_id)
        if item is None:
            continue
        record = item_record(item, reviewer_names=names)
        if record.status != "approved":
            raise CatalogueError(f"item {item_id} is {record.status}, not approved: it cannot be minted")
        approvals = [Approval(d.id, names.get(d.reviewer_id, str(d.reviewer_id)), d.decided_at) for d in catalogue.approvals_for(item_id)]
        metadata = mint_metadata(record)
        document = canonical_json(metadata)
        key = f"metadata/{hashlib.sha256(document).hexdigest()}.json"
        stored = store.put_bytes(key, document, content_type="application/json")
        catalogue.register_stored_objects([StoredObjectRef.of(stored, role="metadata", item_id=item_id)], actor="mint")
        items.append(build_mint_item(record, approvals, metadata=metadata, metadata_uri=f"{store.url.rstrip('/')}/{key}"))
    batch_ref = f"rf-{datetime.now(timezone.utc):%Y%m%d}-{uuid.uuid4().hex[:12]}"
    head = catalogue.audit_head()
    anchor = AuditAnchor(entry_id=head.entry_id, entry_hash=head.entry_hash) if head else None
    request = build_mint_request(batch_ref=batch_ref, recipient=recipient, items=items, audit_anchor=anchor)
    body = request.model_dump(mode="json")
    batch_id = catalogue.create_mint_batch(item_ids=[item_id_from_ref(i.item_ref) for i in items], batch_ref=batch_ref,
                                           idempotency_key=str(uuid.uuid4()), request_body=body,
                                           request_sha256=hashlib.sha256(request.body_bytes()).hexdigest())
    anchor_record(catalogue, store, reason=f"mint batch {batch_ref}")
    return batch_id


@task(name="send-mint-batch", cache_policy=NO_CACHE, task_run_name="send batch {batch_id}")
def send_batch(catalogue: Catalogue, client: IssuerClient, batch_id: int) -> dict[str, Any]:
    """Send one committed batch (same key, same bytes on every try) and record the receipt."""
    logger = get_run_logger()
    batch = catalogue.mint_batch(batch_id)
    request = MintRequest.model_validate(batch.request_body)
    try:
        receipt = client.mint_batch(request, idempotency_key=batch.idempotency_key)
    except IssuerError as exc:
        catalogue.record_mint_failure(batch_id, error=str(exc), permanent=not exc.retryable)
        logger.error("batch %s not minted (%s): %s", batch.batch_ref, "will retry next run" if exc.retryable else "refused", exc)
        return {"batch_ref": batch.batch_ref, "status": "failed" if exc.retryable else "rejected", "error": str(exc), "tokens": []}
    tokens = [(item_id_from_ref(t.item_ref), t.token_id, t.tx_hash) for t in receipt.tokens]
    catalogue.record_mint_receipt(batch_id, chain=receipt.chain, tokens=tokens, raw=receipt.model_dump(mode="json"))
    logger.info("batch %s minted on %s: %d tokens", batch.batch_ref, receipt.chain, len(tokens))
    return {"batch_ref": batch.batch_ref, "status": "minted", "chain": receipt.chain,
            "tokens": [{"item_id": i, "token_id": t, "tx_hash": h} for i, t, h in tokens]}


@flow(name="mint")
def mint_flow(settings: Settings | None = None) -> dict[str, Any]:
    """Resend open batches, then batch every newly approved item; returns what was minted."""
    logger = get_run_logger()
    settings = settings or load_settings()
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    store = open_store(settings)
    require_sound_record(catalogue, store)  # the approvals are only evidence if the record vouches for itself
    results: list[dict[str, Any]] = []
    with IssuerClient.from_settings(settings) as client:
        open_batches = [b.id for b in catalogue.open_mint_batches()]
        if open_batches:
            logger.info("resending %d open batch(es) under their original idempotency keys", len(open_batches))
        approved = [item.id for item in catalogue.approved_items()]
        new_batches = [prepare_batch(catalogue, store, item_ids=approved[i:i + MAX_ITEMS_PER_BATCH], recipient=settings.mint_recipient)
                       for i in range(0, len(approved), MAX_ITEMS_PER_BATCH)]
        for batch_id in open_batches + new_batches:
            results.append(send_batch(catalogue, client, batch_id))
    rows = [{"batch": r["batch_ref"], "status": r["status"], "item": str(t["item_id"]), "token": t["token_id"]}
            for r in results for t in r["tokens"]] + [
            {"batch": r["batch_ref"], "status": r["status"], "item": "-", "token": r.get("error", "")} for r in results if not r["tokens"]]
    create_table_artifact(key="mint-report", table=rows or [{"batch": "-", "status": "nothing to mint", "item": "-", "token": "-"}],
                          description=f"{sum(len(r['tokens']) for r in results)} tokens minted in {len(results)} batch(es)")
    catalogue.dispose()
    return {"batches": results, "minted": sum(len(r["tokens"]) for r in results),
            "failed": [r["batch_ref"] for r in results if r["status"] != "minted"]}

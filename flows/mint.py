"""The mint flow: approvals committed in the catalogue → a signed, idempotent batch at the issuer.

Order of effects, each safe to repeat: (0) every approved item is checked against the approval rules
re-derived from the record (tasks/mint_eligibility.py); one that breaks a rule is held with its reason and
stays approved, the others go on; (1) the metadata documents are written create-only and registered
in the inventory of stored objects (for fixity); (2) in one transaction the rules are checked again, the
batch, its Idempotency-Key and its exact body (built from the items that still pass) are committed and
those items moved approved→batched; (3) the request is sent, retried with the same key and bytes; (4) the
receipt is stored and the items become minted. A crash anywhere leaves an open batch that the next run
resends as it is, so the issuer answers with what it already did instead of minting twice.

A 409 (``already_minted``, ``batch_exists``) or a timeout is not a verdict: the issuer is asked what it
holds (the batch, the tokens of its items) and that is recorded, once per item. Items it holds nothing
for go back to ``approved`` and a further round of the same run batches them again. A receipt that
cannot be true (a token id twice, already recorded, another chain) fails only its own batch.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from relicflow.audit_record import anchor_record, require_sound_chain
from relicflow.catalogue import Catalogue, StoredObjectRef
from relicflow.catalogue.records import item_record
from relicflow.catalogue.minting import Token
from relicflow.errors import BadReceipt, IssuerError
from relicflow.installation import check_catalogue
from relicflow.issuer_client import CONFLICT_CODES, IssuerClient
from relicflow.settings import Settings, load_settings
from relicflow.storage import ObjectStore, open_store
from schemas.issuer import MAX_ITEMS_PER_BATCH, MintItem, MintReceipt, MintRequest, canonical_json
from tasks.mint_eligibility import Eligible, Hold, hold
from tasks.minting import build_mint_item, item_id_from_ref, mint_metadata
from tasks.relic_grade import DEFAULT_TWO_REVIEWER_GRADES

MAX_ROUNDS = 3  # a round re-batches items a recovery returned to approved; each round can only shrink them


@dataclass
class Preparation:
    """What preparing the run's batches did: committed batch ids, items held (id → code), items left out."""

    batch_ids: list[int] = field(default_factory=list)
    held: dict[int, str] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)


def build_item(catalogue: Catalogue, store: ObjectStore, item_id: int, eligible: Eligible) -> MintItem:
    """Publish one item's metadata document (create-only, inventoried) and build its part of the body."""
    item = catalogue.item(item_id)
    if item is None:
        raise ValueError(f"item {item_id} no longer exists")
    record = item_record(item)
    metadata = mint_metadata(record)
    document = canonical_json(metadata)
    key = f"metadata/{hashlib.sha256(document).hexdigest()}.json"
    stored = store.put_bytes(key, document, content_type="application/json")
    catalogue.register_stored_objects([StoredObjectRef.of(stored, role="metadata", item_id=item_id)], actor="mint")
    return build_mint_item(record, eligible.approvals, metadata=metadata, metadata_uri=f"{store.url.rstrip('/')}/{key}")


def prepare_batches(catalogue: Catalogue, store: ObjectStore, *, recipient: str, item_ids: Sequence[int] | None = None,
                    two_reviewer_grades: Iterable[str] = DEFAULT_TWO_REVIEWER_GRADES) -> Preparation:
    """Assess, build and batch every approved item (or those of ``item_ids``); one bad item stops nothing.

    An item whose record cannot be made into a valid request (e.g. a name too long for the contract) is
    held as metadata_invalid. Storage that cannot be written stops the run: that is no item's fault.
    """
    grades = tuple(two_reviewer_grades)
    result = Preparation()
    assessment = catalogue.assess_for_mint(two_reviewer_grades=grades, item_ids=item_ids)
    result.held.update({item_id: h.code for item_id, h in assessment.held})
    for start in range(0, len(assessment.eligible), MAX_ITEMS_PER_BATCH):
        built: list[MintItem] = []
        for item_id, eligible in assessment.eligible[start:start + MAX_ITEMS_PER_BATCH]:
            try:
                built.append(build_item(catalogue, store, item_id, eligible))
            except ValueError as exc:  # pydantic's ValidationError is one: the record breaks the contract
                problem = hold("metadata_invalid", error=str(exc).splitlines()[0][:300])
                catalogue.record_mint_hold(item_id, problem)
                result.held[item_id] = problem.code
        if not built:
            continue
        batch_ref = f"rf-{datetime.now(timezone.utc):%Y%m%d}-{uuid.uuid4().hex[:12]}"
        outcome = catalogue.batch_for_mint(built, batch_ref=batch_ref, recipient=recipient, idempotency_key=str(uuid.uuid4()),
                                           two_reviewer_grades=grades)
        result.held.update({item_id: h.code for item_id, h in outcome.held})
        result.skipped += outcome.skipped
        if outcome.batch_id is not None:
            result.batch_ids.append(outcome.batch_id)
            anchor_record(catalogue, store, reason=f"mint batch {batch_ref}")
    return result


def prepare_batch(catalogue: Catalogue, store: ObjectStore, *, item_ids: list[int], recipient: str,
                  two_reviewer_grades: Iterable[str] = DEFAULT_TWO_REVIEWER_GRADES) -> int | None:
    """Prepare one batch of ``item_ids`` (at most MAX_ITEMS_PER_BATCH); its id, or None if none passed."""
    if len(item_ids) > MAX_ITEMS_PER_BATCH:
        raise ValueError(f"at most {MAX_ITEMS_PER_BATCH} items in one batch")
    batch_ids = prepare_batches(catalogue, store, recipient=recipient, item_ids=item_ids, two_reviewer_grades=two_reviewer_grades).batch_ids
    return batch_ids[0] if batch_ids else None


def held_items(catalogue: Catalogue) -> list[tuple[int, Hold]]:
    """Approved items the mint holds back, with their reasons (for the run report)."""
    return [(i.id, Hold(i.mint_hold_code, i.mint_hold_message_en or "", i.mint_hold_message_zh or ""))
            for i in catalogue.approved_items() if i.mint_hold_code]


@task(name="send-mint-batch", cache_policy=NO_CACHE, task_run_name="send batch {batch_id}")
def send_batch(catalogue: Catalogue, client: IssuerClient, batch_id: int) -> dict[str, Any]:
    """Send one committed batch (same key, same bytes on every try) and record what the issuer holds."""
    logger = get_run_logger()
    batch = catalogue.mint_batch(batch_id)
    request = MintRequest.model_validate(batch.request_body)
    result: dict[str, Any] = {"batch_ref": batch.batch_ref, "tokens": [], "returned": []}
    try:
        try:
            receipt = client.mint_batch(request, idempotency_key=batch.idempotency_key)
        except BadReceipt:
            raise
        except IssuerError as exc:
            if exc.code not in CONFLICT_CODES and not exc.retryable:
                catalogue.record_mint_failure(batch_id, error=str(exc), permanent=True)
                logger.error("batch %s refused by the issuer: %s", batch.batch_ref, exc)
                return result | {"status": "rejected", "error": str(exc)}
            return result | _recover(catalogue, client, batch_id, request, exc)
        return result | _record_receipt(catalogue, batch_id, receipt, source="mint")
    except BadReceipt as exc:
        catalogue.record_mint_failure(batch_id, error=exc.both(), permanent=False)
        logger.error("batch %s: receipt not recorded, the batch stays open: %s", batch.batch_ref, exc.both())
        return result | {"status": "failed", "error": exc.both()}


def _record_receipt(catalogue: Catalogue, batch_id: int, receipt: MintReceipt, *, source: str) -> dict[str, Any]:
    tokens = [(item_id_from_ref(t.item_ref), t.token_id, t.tx_hash) for t in receipt.tokens]
    catalogue.record_mint_receipt(batch_id, chain=receipt.chain, tokens=tokens, raw=receipt.model_dump(mode="json"), source=source)
    get_run_logger().info("batch %s minted on %s: %d tokens%s", receipt.batch_ref, receipt.chain, len(tokens),
                          "" if source == "mint" else f" (recorded from the issuer's ledger after: {source})")
    return {"status": "minted", "chain": receipt.chain, "from_issuer": source != "mint",
            "tokens": [{"item_id": i, "token_id": t, "tx_hash": h} for i, t, h in tokens]}


def _recover(catalogue: Catalogue, client: IssuerClient, batch_id: int, request: MintRequest, exc: IssuerError) -> dict[str, Any]:
    """After a 409 or a timeout: ask the issuer what it holds for this batch and record it."""
    logger = get_run_logger()
    ref = request.batch_ref
    try:
        holdings = client.holdings(request)
    except BadReceipt:
        raise
    except IssuerError as ask:
        error = f"{exc}; asking the issuer what it holds failed too: {ask}"
        catalogue.record_mint_failure(batch_id, error=error, permanent=False)
        logger.error("batch %s stays open, the next run asks again: %s", ref, error)
        return {"status": "failed", "error": error}
    if holdings.receipt is not None:
        return _record_receipt(catalogue, batch_id, holdings.receipt, source=exc.code or "timeout")
    if not holdings.tokens and exc.code not in CONFLICT_CODES:  # a timeout, and the issuer holds nothing: resend later
        catalogue.record_mint_failure(batch_id, error=str(exc), permanent=False)
        logger.warning("batch %s not minted yet (%s); the next run resends it under the same key", ref, exc)
        return {"status": "failed", "error": str(exc)}
    if not holdings.tokens:  # 409, yet the issuer shows neither the batch nor any of its items
        error = f"{exc}; but the issuer holds neither batch {ref} nor a token of its items"
        catalogue.record_mint_failure(batch_id, error=error, permanent=True)
        logger.error("batch %s refused and unexplained; release it with `relicflow batches release`: %s", ref, error)
        return {"status": "rejected", "error": error}
    found = [Token(item_id_from_ref(t.item_ref), t.token_id, t.tx_hash, t.chain, t.batch_ref) for t in holdings.tokens]
    reason = (f"issuer answered {exc.code or 'no answer'}: {len(found)} item(s) already minted in "
              f"{', '.join(sorted({t.issuer_batch_ref for t in found}))}")
    settled = catalogue.settle_from_issuer(batch_id, tokens=found, reason=reason)
    logger.warning("batch %s: %s; recorded %d, returned %d item(s) to approved for a new batch",
                   ref, reason, len(settled["recorded"]), len(settled["returned"]))
    return {"status": "recovered", "returned": settled["returned"], "from_issuer": True,
            "tokens": [{"item_id": t.item_id, "token_id": t.token_id, "tx_hash": t.tx_hash} for t in found]}


@flow(name="mint")
def mint_flow(settings: Settings | None = None, catalogue_id: str | None = None) -> dict[str, Any]:
    """Resend open batches, then batch every newly approved item; returns what was minted.

    ``catalogue_id``: the catalogue this run is for; a run that finds another one refuses (CatalogueMismatch)."""
    logger = get_run_logger()
    settings = settings or load_settings()
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    try:
        check_catalogue(catalogue, catalogue_id, settings)
    except Exception:
        catalogue.dispose()
        raise
    store = open_store(settings)
    require_sound_chain(catalogue, store)  # the approvals are only evidence if the chain vouches for itself
    results: list[dict[str, Any]] = []
    with IssuerClient.from_settings(settings) as client:
        open_batches = [b.id for b in catalogue.open_mint_batches()]
        if open_batches:
            logger.info("resending %d open batch(es) under their original idempotency keys", len(open_batches))
        to_send = open_batches
        for _ in range(MAX_ROUNDS):
            prepared = prepare_batches(catalogue, store, recipient=settings.mint_recipient,
                                       two_reviewer_grades=settings.two_reviewer_grades)
            for item_id, code in sorted(prepared.held.items()):
                logger.warning("item %s held back from minting: %s", item_id, code)
            round_results = [send_batch(catalogue, client, batch_id) for batch_id in to_send + prepared.batch_ids]
            results += round_results
            to_send = []
            if not any(r["returned"] for r in round_results):
                break
        held = held_items(catalogue)
    rows = [{"batch": r["batch_ref"], "status": r["status"], "item": str(t["item_id"]), "token": t["token_id"]}
            for r in results for t in r["tokens"]] + [
            {"batch": r["batch_ref"], "status": r["status"], "item": "-", "token": r.get("error", "")} for r in results if not r["tokens"]] + [
            {"batch": "-", "status": f"held: {h.code}", "item": str(item_id), "token": h.message_en} for item_id, h in held]
    create_table_artifact(key="mint-report", table=rows or [{"batch": "-", "status": "nothing to mint", "item": "-", "token": "-"}],
                          description=f"{sum(len(r['tokens']) for r in results)} tokens minted in {len(results)} batch(es)")
    # batches refused earlier still hold their items: say so on every run until someone settles them
    refused = [b.batch_ref for b in catalogue.unsettled_batches() if b.status == "rejected"]
    if refused:
        logger.error("%d refused batch(es) still hold items (relicflow batches release): %s", len(refused), ", ".join(refused))
    catalogue.dispose()
    return {"refused_holding_items": refused, "batches": results, "minted": sum(len(r["tokens"]) for r in results),
            "from_issuer": sum(len(r["tokens"]) for r in results if r.get("from_issuer")),
            "failed": [r["batch_ref"] for r in results if r["status"] in ("failed", "rejected")],
            "recovered": [r["batch_ref"] for r in results if r["status"] == "recovered"],
            "held": {item_id: h.code for item_id, h in held}}

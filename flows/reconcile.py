"""Reconciliation of the catalogue with the issuer's ledger (`relicflow reconcile`); plain orchestration of the
catalogue and the issuer client, run on demand.

First it repairs what the issuer's own records settle: batches the catalogue still has as pending,
failed or refused whose batch (or whose items' tokens) the issuer holds, and approved items the issuer
has already minted (a catalogue restored from an older backup). Then it compares, item by item, the
receipts in the catalogue with the tokens the issuer lists for this catalogue's item refs (never the
whole ledger) and reports every difference left, in English and Chinese, with what to do about it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from relicflow.catalogue import Catalogue
from relicflow.catalogue.minting import Token
from relicflow.errors import BadReceipt, IssuerError
from relicflow.issuer_client import FoundToken, IssuerClient
from schemas.issuer import LedgerToken, MintRequest
from tasks.minting import item_id_from_ref, item_ref

log = logging.getLogger("relicflow.reconcile")


@dataclass(frozen=True)
class Finding:
    """One repair made or one difference left; ``code`` is stable, the messages say what to do."""

    code: str
    message_en: str
    message_zh: str

    def message(self, locale: str) -> str:
        return self.message_en if locale.startswith("en") else self.message_zh


@dataclass
class ReconcileReport:
    items: int = 0
    issuer_tokens: int = 0
    repaired: list[Finding] = field(default_factory=list)
    differences: list[Finding] = field(default_factory=list)


def _tokens(found: list[FoundToken]) -> list[Token]:
    return [Token(item_id_from_ref(t.item_ref), t.token_id, t.tx_hash, t.chain, t.batch_ref) for t in found]


def reconcile(catalogue: Catalogue, client: IssuerClient, *, actor: str) -> ReconcileReport:
    """Repair what the issuer's records settle, then report what still differs."""
    report = ReconcileReport()
    _repair_batches(catalogue, client, report, actor=actor)
    _repair_approved(catalogue, client, report, actor=actor)
    _compare(catalogue, client, report)
    return report


def _repair_batches(catalogue: Catalogue, client: IssuerClient, report: ReconcileReport, *, actor: str) -> None:
    for batch in catalogue.unsettled_batches():
        ref = batch.batch_ref
        try:
            request = MintRequest.model_validate(batch.request_body)
            holdings = client.holdings(request)
            if holdings.receipt is not None:
                receipt = holdings.receipt
                tokens = [(item_id_from_ref(t.item_ref), t.token_id, t.tx_hash) for t in receipt.tokens]
                catalogue.record_mint_receipt(batch.id, chain=receipt.chain, tokens=tokens, raw=receipt.model_dump(mode="json"),
                                              actor=actor, source="reconcile")
                report.repaired.append(Finding("batch_recorded", f"batch {ref}: the issuer minted it; {len(tokens)} token(s) recorded",
                                               f"批次 {ref}：发行方已发行，已记录 {len(tokens)} 个数字藏品"))
            elif holdings.tokens:
                reason = f"reconcile: {len(holdings.tokens)} item(s) of batch {ref} already minted in other issuer batches"
                settled = catalogue.settle_from_issuer(batch.id, tokens=_tokens(holdings.tokens), reason=reason, actor=actor)
                report.repaired.append(Finding(
                    "batch_recovered",
                    f"batch {ref}: {len(settled['recorded'])} token(s) the issuer holds recorded; "
                    f"{len(settled['returned'])} item(s) returned to approved for the next mint",
                    f"批次 {ref}：已记录发行方持有的 {len(settled['recorded'])} 个数字藏品；{len(settled['returned'])} 件藏品退回“已通过”，由下次发行处理"))
        except BadReceipt as err:
            log.error("reconcile: batch %s: %s", ref, err.both())
            report.differences.append(Finding(err.code or "bad_receipt", f"batch {ref}: {err.message_en}", f"批次 {ref}：{err.message_zh}"))
        except IssuerError as err:
            log.error("reconcile: batch %s: cannot ask the issuer: %s", ref, err)
            report.differences.append(Finding("issuer_unreachable", f"batch {ref}: cannot ask the issuer ({err}); run reconcile again later",
                                              f"批次 {ref}：无法询问发行方（{err}），请稍后再次对账"))


def _repair_approved(catalogue: Catalogue, client: IssuerClient, report: ReconcileReport, *, actor: str) -> None:
    statuses = catalogue.item_statuses()
    approved = [item_ref(i) for i, status in statuses.items() if status == "approved"]
    if not approved:
        return
    listed = client.list_tokens(item_refs=approved)
    if not listed:
        return
    try:
        found = client.confirm(listed)
        catalogue.record_tokens_of_approved(_tokens(found), actor=actor)
    except BadReceipt as err:
        log.error("reconcile: tokens of approved items: %s", err.both())
        report.differences.append(Finding(err.code or "bad_receipt", err.message_en, err.message_zh))
        return
    for t in found:
        item = item_id_from_ref(t.item_ref)
        report.repaired.append(Finding("approved_item_recorded",
                                       f"item {item}: the issuer minted it as {t.token_id} in batch {t.batch_ref}; recorded",
                                       f"藏品 {item}：发行方已在批次 {t.batch_ref} 中发行为 {t.token_id}，已记录"))


def _compare(catalogue: Catalogue, client: IssuerClient, report: ReconcileReport) -> None:
    statuses = catalogue.item_statuses()
    ledger: dict[int, LedgerToken] = {item_id_from_ref(t.item_ref): t for t in client.list_tokens(item_refs=[item_ref(i) for i in statuses])}
    receipts = {r.item_id: r for r in catalogue.receipts()}
    report.items, report.issuer_tokens = len(statuses), len(ledger)
    for item_id, receipt in sorted(receipts.items()):
        held = ledger.get(item_id)
        if held is None:
            report.differences.append(Finding(
                "receipt_unknown_to_issuer",
                f"item {item_id}: the catalogue records token {receipt.token_id} (batch {receipt.issuer_batch_ref}), "
                "the issuer holds no token for it; ask the issuer before anything else",
                f"藏品 {item_id}：目录记录了数字藏品 {receipt.token_id}（批次 {receipt.issuer_batch_ref}），发行方却没有；请先与发行方核实"))
        elif (held.token_id, held.tx_hash, held.batch_ref) != (receipt.token_id, receipt.tx_hash, receipt.issuer_batch_ref):
            report.differences.append(Finding(
                "token_mismatch",
                f"item {item_id}: catalogue {receipt.token_id} / {receipt.tx_hash} (batch {receipt.issuer_batch_ref}), "
                f"issuer {held.token_id} / {held.tx_hash} (batch {held.batch_ref}); ask the issuer which is right",
                f"藏品 {item_id}：目录记录 {receipt.token_id} / {receipt.tx_hash}（批次 {receipt.issuer_batch_ref}），"
                f"发行方为 {held.token_id} / {held.tx_hash}（批次 {held.batch_ref}）；请与发行方核实"))
    for item_id, held in sorted(ledger.items()):
        if item_id not in receipts:
            status = statuses[item_id]
            report.differences.append(Finding(
                "issuer_token_not_recorded",
                f"item {item_id} ({status}): the issuer holds token {held.token_id} (batch {held.batch_ref}) the catalogue "
                "does not record; an item that is not approved was minted, or its approval was lost in a restore",
                f"藏品 {item_id}（{status}）：发行方持有目录未记录的数字藏品 {held.token_id}（批次 {held.batch_ref}）；"
                "未通过审核的藏品被发行，或恢复备份时丢失了审核记录"))
    for batch in catalogue.unsettled_batches():
        items = [link.item_id for link in batch.item_links]
        if batch.status == "rejected":
            report.differences.append(Finding(
                "batch_refused",
                f"batch {batch.batch_ref}: refused by the issuer ({batch.last_error}); items {items} are still batched. "
                "Return them with `relicflow batches release`",
                f"批次 {batch.batch_ref}：被发行方拒绝（{batch.last_error}），藏品 {items} 仍处于“已打包”。"
                "请用 relicflow batches release 退回"))
        else:
            report.differences.append(Finding(
                "batch_open",
                f"batch {batch.batch_ref} ({batch.status}): not minted at the issuer yet; `relicflow mint` sends it again",
                f"批次 {batch.batch_ref}（{batch.status}）：发行方尚未发行；relicflow mint 会再次发送"))

"""When someone bends the handoff: a catalogue restored from a backup, a request replayed under another
key, a batch minted behind the catalogue's back, receipts that cannot be true. Real catalogue, real
sandbox issuer over HTTP, the real `relicflow` command; each scenario ends with `relicflow reconcile`
reporting zero differences (or the ones that are real) and one token per item."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from fastapi import FastAPI, Request, Response
from typer.testing import CliRunner

from flows.mint import mint_flow, prepare_batch
from relicflow.background_server import serve_in_background
from relicflow.catalogue import Catalogue, ItemStatus
from relicflow.cli import app
from relicflow.issuer_client import IssuerClient
from relicflow.passwords import hash_password
from relicflow.sandbox_issuer import create_sandbox_app
from relicflow.settings import Settings
from relicflow.storage import open_store
from schemas.issuer import MintedToken, MintReceipt, MintRequest
from tests.flows.test_mint import ingest_objects

pytestmark = pytest.mark.usefixtures("prefect_server")

CLI_ENV = {key: None for key in ("PREFECT_HOME", "PREFECT_API_URL", "RELICFLOW_DATA_DIR", "RELICFLOW_LOCALE")}


@pytest.fixture
def approved(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, Catalogue, list[int]]:
    """Three ingested and approved items."""
    for key in ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_LOGGING_LEVEL", "RELICFLOW_DATA_DIR", "RELICFLOW_LOCALE"):
        monkeypatch.setenv(key, "x")  # set-then-delete: whatever the CLI exports is undone after the test
        monkeypatch.delenv(key)
    monkeypatch.setenv("RELICFLOW_PREFECT_PORT", "9")  # no `relicflow serve` on this machine captures the CLI
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps tables at the terminal width; keep lines whole
    ingest_objects(settings, ["red", "green", "blue"])
    catalogue = Catalogue.from_settings(settings)
    reviewer = catalogue.add_user("li", hash_password("pw"), "reviewer")
    ids = [item.id for item in catalogue.items_awaiting_review()]
    for item_id in ids:
        catalogue.record_decision(item_id, reviewer_id=reviewer, decision="approve")
    return settings, catalogue, ids


@pytest.fixture
def issuer(approved: tuple[Settings, Catalogue, list[int]], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Settings]]:
    settings = approved[0]
    sandbox = create_sandbox_app(ledger_path=settings.sandbox_ledger_path, api_key=settings.issuer_api_key.get_secret_value(),
                                 secret=settings.issuer_secret.get_secret_value().encode())
    with serve_in_background(sandbox) as url:
        monkeypatch.setenv("RELICFLOW_ISSUER_URL", url)
        yield url, settings.model_copy(update={"issuer_url": url})


def cli(settings: Settings, *args: str, lang: str = "en") -> Result:
    return CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), "--lang", lang, *args], catch_exceptions=False, env=CLI_ENV)


def ledger(settings: Settings) -> dict[str, tuple[str, str, str]]:
    with IssuerClient.from_settings(settings) as client:
        return {t.item_ref: (t.token_id, t.tx_hash, t.batch_ref) for t in client.list_tokens()}


def recorded(catalogue: Catalogue) -> dict[str, tuple[str, str, str]]:
    return {f"relicflow:item:{r.item_id}": (r.token_id, r.tx_hash, r.issuer_batch_ref) for r in catalogue.receipts()}


def assert_settled(settings: Settings, catalogue: Catalogue, ids: list[int]) -> None:
    """One token per item, the same in the catalogue and at the issuer, and reconcile finds nothing."""
    tokens = ledger(settings)
    assert sorted(tokens) == sorted(f"relicflow:item:{i}" for i in ids)
    assert recorded(catalogue) == tokens
    assert all(catalogue.item_status(i) is ItemStatus.minted for i in ids)
    result = cli(settings, "reconcile")
    assert result.exit_code == 0, result.output
    assert "0 differences: the catalogue and the issuer agree." in result.output
    assert catalogue.verify_audit_chain() is None


def test_restore_from_a_backup_records_the_issuers_tokens_once_and_mints_the_rest(issuer, approved) -> None:  # noqa: ANN001
    url, s = issuer
    settings, catalogue, ids = approved
    if not settings.database_url.startswith("sqlite:///"):
        pytest.skip("a file copy is the SQLite catalogue's backup; PostgreSQL restores are pg_dump's business")
    db = Path(settings.database_url.removeprefix("sqlite:///"))
    backup = db.with_name("backup.sqlite3")
    with sqlite3.connect(db) as live, sqlite3.connect(backup) as copy:
        live.backup(copy)  # after approval, before any mint
    first_id = prepare_batch(catalogue, open_store(settings), item_ids=ids[:2], recipient="museum")
    first = catalogue.mint_batch(first_id)
    assert mint_flow(settings=s)["minted"] == 3  # ids[:2] in the first batch, ids[2] in a second
    catalogue.dispose()
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    backup.replace(db)  # the restore: the catalogue forgets both batches
    assert all(catalogue.item_status(i) is ItemStatus.approved for i in ids)

    # The anchors written with both batches name entries the restored catalogue does not hold: until an
    # administrator accepts the restore (a sealed entry), the record does not vouch for itself.
    refused = cli(s, "mint")
    assert refused.exit_code == 1 and "entries were deleted" in refused.output and "Nothing was minted" in refused.output
    accepted = cli(s, "audit", "accept-restore", "--reason", "disk failure; restored last night's backup", "--by", "zhao")
    assert accepted.exit_code == 0 and "Restore accepted" in accepted.output, accepted.output
    assert cli(s, "audit", "verify").exit_code == 0
    result = cli(s, "mint")
    assert result.exit_code == 0, result.output
    assert "Mint done: 3 tokens in 1 batch(es), 0 failed" in result.output
    assert "3 of these tokens the issuer had minted before" in " ".join(result.output.split())
    listing = " ".join(cli(s, "batches", "list").output.split())
    assert "settled from the issuer's records │ 3 │ 0 │ 3 │" in listing  # 3 sent, none left batched, 3 tokens
    assert_settled(s, catalogue, ids)
    assert {recorded(catalogue)[f"relicflow:item:{i}"][2] for i in ids[:2]} == {first.batch_ref}
    again = mint_flow(settings=s)
    assert again["batches"] == [] and again["failed"] == []


def test_restore_to_before_part_of_a_batch_returns_the_rest_to_approved_and_a_new_batch_takes_it(issuer, approved) -> None:  # noqa: ANN001
    url, s = issuer
    settings, catalogue, ids = approved
    # What a restore leaves behind, without a file copy (so it runs on PostgreSQL too): the issuer minted
    # ids[:2] in a batch the catalogue no longer knows; the catalogue now batches all three again.
    lost = prepare_batch(catalogue, open_store(settings), item_ids=ids[:2], recipient="museum")
    lost_batch = catalogue.mint_batch(lost)
    with IssuerClient.from_settings(s) as client:
        client.mint_batch(MintRequest.model_validate(lost_batch.request_body), idempotency_key=lost_batch.idempotency_key)
    catalogue.release_batch(lost_batch.batch_ref, to=ItemStatus.approved, actor="test:restore", reason="simulated restore")

    result = mint_flow(settings=s)
    assert result["failed"] == [] and result["minted"] == 3 and result["from_issuer"] == 2
    statuses = [r["status"] for r in result["batches"]]
    assert statuses == ["recovered", "minted"]  # all three sent; two found at the issuer; the third re-batched
    assert result["batches"][0]["returned"] == [ids[2]]
    assert_settled(s, catalogue, ids)
    assert {recorded(catalogue)[f"relicflow:item:{i}"][2] for i in ids[:2]} == {lost_batch.batch_ref}
    back = [e for e in catalogue.audit_entries(item_id=ids[2]) if e.action == "status:approved" and e.details.get("from") == "batched"]
    assert len(back) == 1 and "already_minted" in back[0].details["reason"]


def test_a_captured_request_replayed_under_another_key_is_refused_and_the_batch_still_mints_once(issuer, approved) -> None:  # noqa: ANN001
    url, s = issuer
    settings, catalogue, ids = approved
    batch = catalogue.mint_batch(prepare_batch(catalogue, open_store(settings), item_ids=ids, recipient="museum"))
    body = MintRequest.model_validate(batch.request_body).body_bytes()
    with IssuerClient.from_settings(s) as client:
        captured = client._build("POST", "/v1/mint-batches", body, batch.idempotency_key)  # as it went on the wire
    headers = dict(captured.headers) | {"idempotency-key": "replayed-under-a-new-key"}
    replay = httpx.post(f"{url}/v1/mint-batches", content=body, headers=headers, timeout=10)
    assert replay.status_code == 401 and replay.json()["code"] == "bad_signature"
    assert ledger(s) == {}
    result = mint_flow(settings=s)
    assert result["minted"] == 3 and result["failed"] == []
    assert_settled(s, catalogue, ids)


def test_a_batch_minted_at_the_issuer_under_another_key_is_recorded_after_batch_exists(issuer, approved) -> None:  # noqa: ANN001
    url, s = issuer
    settings, catalogue, ids = approved
    batch_id = prepare_batch(catalogue, open_store(settings), item_ids=ids, recipient="museum")
    batch = catalogue.mint_batch(batch_id)
    catalogue.record_mint_failure(batch_id, error="timeout", permanent=False)  # the catalogue shows it failed
    with IssuerClient.from_settings(s) as client:  # e.g. a replay under another key before contract 2026-12
        minted = client.mint_batch(MintRequest.model_validate(batch.request_body), idempotency_key="someone-elses-key")
        with pytest.raises(Exception, match="batch_exists"):
            client.mint_batch(MintRequest.model_validate(batch.request_body), idempotency_key=batch.idempotency_key)
    result = mint_flow(settings=s)
    assert result["failed"] == [] and [r["status"] for r in result["batches"]] == ["minted"]
    assert catalogue.mint_batch(batch_id).status == "minted"
    assert {r.token_id for r in catalogue.receipts()} == {t.token_id for t in minted.tokens}
    assert [e.details["source"] for e in catalogue.audit_entries() if e.action == "batch:minted"] == ["batch_exists"]
    assert_settled(s, catalogue, ids)


def test_reconcile_repairs_what_earlier_runs_left_stuck_and_reports_what_it_cannot(issuer, approved) -> None:  # noqa: ANN001
    url, s = issuer
    settings, catalogue, ids = approved
    store = open_store(settings)
    # (a) the old verdict: a 409 marked the batch rejected, its items batched for good, though the issuer minted it
    stuck = catalogue.mint_batch(prepare_batch(catalogue, store, item_ids=ids[:2], recipient="museum"))
    # (b) an approved item the issuer already minted (its batch lost in a restore)
    lost = catalogue.mint_batch(prepare_batch(catalogue, store, item_ids=ids[2:], recipient="museum"))
    with IssuerClient.from_settings(s) as client:
        for batch in (stuck, lost):
            client.mint_batch(MintRequest.model_validate(batch.request_body), idempotency_key=batch.idempotency_key)
    catalogue.record_mint_failure(stuck.id, error="HTTP 409 already_minted", permanent=True)
    catalogue.release_batch(lost.batch_ref, to=ItemStatus.approved, actor="test:restore", reason="simulated restore")

    result = cli(s, "reconcile")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert f"Repaired: batch {stuck.batch_ref}: the issuer minted it; 2 token(s) recorded" in out
    assert f"Repaired: item {ids[2]}: the issuer minted it as" in out and "0 differences" in out
    assert_settled(s, catalogue, ids)

    # What reconcile cannot repair is reported, and the exit code says so.
    with sqlite3.connect(settings.sandbox_ledger_path) as raw:
        raw.execute("UPDATE tokens SET tx_hash = '0xbent' WHERE item_ref = ?", (f"relicflow:item:{ids[0]}",))
    raw.close()
    bent = cli(s, "reconcile")
    assert bent.exit_code == 1 and "- token_mismatch: item" in bent.output and "1 difference(s) remain" in bent.output
    with serve_in_background(create_sandbox_app(ledger_path=settings.data_dir / "empty.sqlite3",
                                                api_key=s.issuer_api_key.get_secret_value(),
                                                secret=s.issuer_secret.get_secret_value().encode())) as empty_url:
        empty = CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), "reconcile"], catch_exceptions=False,
                                   env=CLI_ENV | {"RELICFLOW_ISSUER_URL": empty_url})
    assert empty.exit_code == 1 and empty.output.count("- receipt_unknown_to_issuer：藏品") == 3
    assert "仍有 3 处差异" in empty.output  # Chinese by default


# -- receipts that cannot be true fail only their own batch ---------------------------------------


def _bending_issuer(bend: str, bent_batch: list[str]) -> FastAPI:
    """An issuer of our own over real HTTP: sound receipts, except for the batches listed in ``bent_batch``."""
    app_ = FastAPI()
    counter = itertools.count(1)
    issued: list[str] = []

    @app_.post("/v1/mint-batches")
    async def mint(request: Request) -> Response:
        sent = MintRequest.model_validate_json(await request.body())
        tokens = [MintedToken(item_ref=i.item_ref, token_id=f"sandbox-chain:{next(counter):08d}", tx_hash="0xabc") for i in sent.items]
        chain = "sandbox-chain"
        if sent.batch_ref in bent_batch:
            if bend == "token id twice in the receipt":
                tokens = [t.model_copy(update={"token_id": tokens[0].token_id}) for t in tokens]
            elif bend == "token id already recorded":
                tokens[0] = tokens[0].model_copy(update={"token_id": issued[0]})
            elif bend == "another chain":
                chain = "somebody-elses-chain"
        issued.extend(t.token_id for t in tokens)
        receipt = MintReceipt(batch_ref=sent.batch_ref, status="minted", chain=chain, minted_at=datetime.now(UTC), tokens=tokens)
        return Response(receipt.model_dump_json(), status_code=201, media_type="application/json")

    return app_


@pytest.mark.parametrize(("bend", "code", "zh"), [
    ("token id twice in the receipt", "receipt_token_twice", "同一数字藏品编号"),
    ("token id already recorded", "token_already_recorded", "一个编号不能对应两件文物"),
    ("another chain", "receipt_wrong_chain", "本系统配置的链"),
])
def test_a_bad_receipt_fails_its_batch_with_a_reason_and_the_other_batch_mints(approved, bend: str, code: str, zh: str) -> None:  # noqa: ANN001
    settings, catalogue, ids = approved
    good_id = prepare_batch(catalogue, open_store(settings), item_ids=ids[:1], recipient="museum")  # an open batch, sent first
    bent: list[str] = []
    with serve_in_background(_bending_issuer(bend, bent)) as url:
        s = settings.model_copy(update={"issuer_url": url})
        # the run's own new batch (the two other items) is the one whose receipt is bent
        import flows.mint as mint_module

        original = mint_module.prepare_batches

        def tag(*args: Any, **kwargs: Any) -> Any:
            prepared = original(*args, **kwargs)
            bent.extend(catalogue.mint_batch(batch_id).batch_ref for batch_id in prepared.batch_ids)
            return prepared

        mint_module.prepare_batches = tag
        try:
            result = mint_flow(settings=s)
        finally:
            mint_module.prepare_batches = original
    [bad_ref] = bent
    assert result["failed"] == [bad_ref]
    assert catalogue.mint_batch(good_id).status == "minted" and catalogue.item_status(ids[0]) is ItemStatus.minted
    bad = next(b for b in catalogue.mint_batches() if b.batch_ref == bad_ref)
    assert bad.status == "failed" and bad.last_error is not None
    assert code in bad.last_error and zh in bad.last_error  # both languages, for whoever is on duty
    assert all(catalogue.item_status(i) is ItemStatus.batched for i in ids[1:])
    assert [r.item_id for r in catalogue.receipts()] == [ids[0]]
    assert catalogue.verify_audit_chain() is None


# -- an operator settles a batch the issuer refused for good --------------------------------------


def _refusing_issuer() -> FastAPI:
    app_ = FastAPI()

    @app_.post("/v1/mint-batches")
    async def mint(request: Request) -> Response:
        body = b'{"title":"Invalid mint request","status":422,"code":"invalid_request","detail":"recipient unknown"}'
        return Response(body, status_code=422, media_type="application/problem+json")

    return app_


def test_batches_list_and_release_return_a_refused_batchs_items_with_name_and_reason(approved) -> None:  # noqa: ANN001
    settings, catalogue, ids = approved
    with serve_in_background(_refusing_issuer()) as url:
        result = mint_flow(settings=settings.model_copy(update={"issuer_url": url}))
    [ref] = result["failed"]
    assert all(catalogue.item_status(i) is ItemStatus.batched for i in ids)
    with serve_in_background(_refusing_issuer()) as url:  # a later run: nothing sent, but the stuck batch is named
        later = CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), "--lang", "en", "mint"], catch_exceptions=False,
                                   env=CLI_ENV | {"RELICFLOW_ISSUER_URL": url})
    assert later.exit_code == 1 and "0 failed" in later.output
    assert f"Batches refused by the issuer still hold items (status batched): {ref}" in " ".join(later.output.split())

    listing = cli(settings, "batches", "list")
    assert listing.exit_code == 0 and ref in listing.output and "refused by the issuer" in listing.output
    assert "invalid_request" in listing.output
    assert "被发行方拒绝" in cli(settings, "batches", "list", lang="zh-CN").output

    assert cli(settings, "batches", "release", ref, "--to", "minted", "--reason", "x").exit_code == 2
    released = cli(settings, "batches", "release", ref, "--to", "rejected", "--reason", "收件账户不存在，改期发行", "--by", "wang")
    assert released.exit_code == 0, released.output
    assert f"Batch {ref}: 3 item(s)" in released.output and "returned to rejected" in released.output
    assert all(catalogue.item_status(i) is ItemStatus.rejected for i in ids)
    entries = [e for e in catalogue.audit_entries() if e.action in ("batch:released", "status:rejected")]
    assert {e.actor for e in entries} == {"cli:wang"}
    assert all(e.details["reason"] == "收件账户不存在，改期发行" for e in entries)
    again = cli(settings, "batches", "release", ref, "--to", "approved", "--reason", "again")
    assert again.exit_code == 1 and "released" in again.output  # only unsettled batches can be released


# -- a timeout is not a verdict either --------------------------------------------------------------


def _slow_issuer(receipts: dict[str, bytes]) -> FastAPI:
    """Mints at once, answers long after the client gave up; GET tells the truth."""
    import asyncio

    app_ = FastAPI()

    @app_.post("/v1/mint-batches")
    async def mint(request: Request) -> Response:
        sent = MintRequest.model_validate_json(await request.body())
        tokens = [MintedToken(item_ref=i.item_ref, token_id=f"sandbox-chain:{n:08d}", tx_hash="0xslow") for n, i in enumerate(sent.items, 1)]
        receipts[sent.batch_ref] = MintReceipt(batch_ref=sent.batch_ref, status="minted", chain="sandbox-chain",
                                               minted_at=datetime.now(UTC), tokens=tokens).model_dump_json().encode()
        await asyncio.sleep(3)  # the client's timeout is far shorter
        return Response(receipts[sent.batch_ref], status_code=201, media_type="application/json")

    @app_.get("/v1/mint-batches/{batch_ref}")
    async def get_batch(batch_ref: str) -> Response:
        if batch_ref not in receipts:
            return Response(b'{"title":"Unknown batch","status":404,"code":"not_found"}', status_code=404)
        return Response(receipts[batch_ref], media_type="application/json")

    return app_


def test_a_mint_that_timed_out_is_recorded_from_the_issuers_receipt(approved) -> None:  # noqa: ANN001
    settings, catalogue, ids = approved
    receipts: dict[str, bytes] = {}
    with serve_in_background(_slow_issuer(receipts)) as url:
        s = settings.model_copy(update={"issuer_url": url, "issuer_timeout_s": 0.5, "issuer_max_attempts": 1})
        result = mint_flow(settings=s)
    assert result["failed"] == [] and result["minted"] == 3 and result["from_issuer"] == 3
    assert all(catalogue.item_status(i) is ItemStatus.minted for i in ids)
    assert [e.details["source"] for e in catalogue.audit_entries() if e.action == "batch:minted"] == ["timeout"]

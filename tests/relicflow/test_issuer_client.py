"""IssuerClient against the real sandbox on loopback: retries with one key, refusals, giving up."""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest
from fastapi import FastAPI, Request, Response

from relicflow.errors import IssuerError
from relicflow.issuer_client import IssuerClient, parse_retry_after
from relicflow.background_server import serve_in_background
from relicflow.sandbox_issuer import create_sandbox_app
from relicflow.settings import load_settings
from relicflow.signing import verify_request
from schemas.issuer import MintedToken, MintItem, MintReceipt, MintRequest, ReviewAttestation, metadata_sha256

API_KEY = "client-test-key"
SECRET = b"client-test-secret"
FAST = {"backoff_base_s": 0.02, "backoff_max_s": 0.1}


def mint_request(batch_ref: str = "batch-1", refs: tuple[str, ...] = ("relicflow:item:1", "relicflow:item:2")) -> MintRequest:
    def item(ref: str) -> MintItem:
        metadata = {"item_ref": ref, "藏品名称": "青花瓷瓶", "级别": "二级"}
        return MintItem(
            item_ref=ref, accession_number=None, name="青花瓷瓶",
            image_sha256=hashlib.sha256(ref.encode()).hexdigest(),
            metadata_uri=f"https://museum.example/meta/{ref}.json",
            metadata_sha256=metadata_sha256(metadata), metadata=metadata,
            review=ReviewAttestation(approved_by=["r1", "r2"], approved_at=datetime(2026, 11, 3, 9, 30, tzinfo=UTC), decision_ids=[1, 2]),
        )

    return MintRequest(batch_ref=batch_ref, recipient="museum-treasury", items=[item(r) for r in refs])


@contextmanager
def sandbox(ledger: Path, **kwargs: object) -> Iterator[str]:
    app = create_sandbox_app(ledger_path=ledger, api_key=API_KEY, secret=SECRET, **kwargs)  # type: ignore[arg-type]
    with serve_in_background(app) as url:
        yield url


def client(url: str, **kwargs: object) -> IssuerClient:
    return IssuerClient(url, api_key=API_KEY, secret=SECRET, **(FAST | kwargs))  # type: ignore[arg-type]


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite3"


def test_mint_then_replay_then_get(ledger: Path) -> None:
    with sandbox(ledger) as url, client(url) as issuer:
        request = mint_request("relicflow:batch:2026-11-03.1")  # colons: percent-encoded in the GET path
        receipt = issuer.mint_batch(request, idempotency_key="mint:batch-1")
        assert [t.item_ref for t in receipt.tokens] == ["relicflow:item:1", "relicflow:item:2"]
        assert issuer.mint_batch(request, idempotency_key="mint:batch-1") == receipt
        assert issuer.get_batch("relicflow:batch:2026-11-03.1") == receipt
        assert issuer.get_batch("never-minted") is None
        assert [t.token_id for t in issuer.list_tokens()] == [t.token_id for t in receipt.tokens]


def test_retries_through_fail_first_with_one_key_and_mints_once(ledger: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="relicflow.issuer")
    with sandbox(ledger, fail_first=2) as url, client(url, max_attempts=3) as issuer:
        receipt = issuer.mint_batch(mint_request(), idempotency_key="mint:batch-1")
        assert len(receipt.tokens) == 2
        assert len(issuer.list_tokens()) == 2
    attempts = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
    assert [a.split(": ", 1)[0] for a in attempts[:3]] == [
        "mint batch-1 attempt 1/3", "mint batch-1 attempt 2/3", "mint batch-1 attempt 3/3"]
    assert "503" in attempts[0] and "HTTP 201" in attempts[2]


def test_timeout_after_the_issuer_took_the_request_ends_in_a_replay_not_a_second_mint(ledger: Path) -> None:
    # The first attempt times out while the sandbox is still minting; the retry with the same key sees
    # 409 request_in_flight, waits, and finally gets the stored receipt.
    with sandbox(ledger, mint_delay_s=0.6) as url, client(url, timeout_s=0.2, max_attempts=20) as issuer:
        receipt = issuer.mint_batch(mint_request(), idempotency_key="mint:batch-1")
        assert len(receipt.tokens) == 2
        assert len(issuer.list_tokens()) == 2


def test_two_workers_with_the_same_key_get_the_same_receipt(ledger: Path) -> None:
    with sandbox(ledger, mint_delay_s=0.2) as url:
        receipts = []

        def work() -> None:
            with client(url, max_attempts=30) as issuer:
                receipts.append(issuer.mint_batch(mint_request(), idempotency_key="mint:batch-1"))

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(receipts) == 2 and receipts[0] == receipts[1]
        with client(url) as issuer:
            assert len(issuer.list_tokens()) == 2


def test_refusals_raise_at_once_and_are_not_retryable(ledger: Path) -> None:
    with sandbox(ledger) as url:
        with client(url) as issuer:
            issuer.mint_batch(mint_request(), idempotency_key="k1")
            with pytest.raises(IssuerError, match="already_minted") as info:
                issuer.mint_batch(mint_request("batch-2", ("relicflow:item:2",)), idempotency_key="k2")
            assert info.value.status_code == 409 and not info.value.retryable
            with pytest.raises(IssuerError, match="idempotency_key_reused") as info:
                issuer.mint_batch(mint_request("batch-3", ("relicflow:item:3",)), idempotency_key="k1")
            assert info.value.status_code == 422 and not info.value.retryable
        with IssuerClient(url, api_key=API_KEY, secret=b"wrong", max_attempts=5) as wrong:
            started = time.monotonic()
            with pytest.raises(IssuerError, match="bad_signature") as info:
                wrong.mint_batch(mint_request("batch-4", ("relicflow:item:4",)), idempotency_key="k4")
            assert info.value.status_code == 401 and not info.value.retryable
            assert time.monotonic() - started < 1  # no backoff spent on a refusal


def test_429_retry_after_is_honoured_and_every_attempt_sends_the_same_key_and_bytes() -> None:
    # A minimal issuer of our own (real HTTP): 429 with Retry-After first, then a receipt.
    seen: list[tuple[str | None, bytes]] = []
    app = FastAPI()

    @app.post("/v1/mint-batches")
    async def mint(request: Request) -> Response:
        body = await request.body()
        verify_request(SECRET, method="POST", path="/v1/mint-batches", timestamp=request.headers["X-Timestamp"],
                       body=body, signature=request.headers["X-Signature"], now=int(time.time()),
                       idempotency_key=request.headers.get("Idempotency-Key"))
        seen.append((request.headers.get("Idempotency-Key"), body))
        if len(seen) == 1:
            return Response(status_code=429, headers={"Retry-After": "1"})
        sent = MintRequest.model_validate_json(body)
        receipt = MintReceipt(batch_ref=sent.batch_ref, status="minted", chain="stub", minted_at=datetime.now(UTC),
                              tokens=[MintedToken(item_ref=i.item_ref, token_id=str(n), tx_hash="0x")
                                      for n, i in enumerate(sent.items)])
        return Response(receipt.model_dump_json(), status_code=201, media_type="application/json")

    with serve_in_background(app) as url, client(url, backoff_base_s=0.01, backoff_max_s=5) as issuer:
        started = time.monotonic()
        assert issuer.mint_batch(mint_request(), idempotency_key="k-429").chain == "stub"
        assert time.monotonic() - started >= 1.0
    assert len(seen) == 2 and seen[0] == seen[1] == ("k-429", mint_request().body_bytes())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gives_up_after_max_attempts_against_a_closed_port(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="relicflow.issuer")
    with client(f"http://127.0.0.1:{_closed_port()}", max_attempts=3) as issuer:
        with pytest.raises(IssuerError, match="gave up after 3 attempts") as info:
            issuer.mint_batch(mint_request(), idempotency_key="k")
    assert info.value.retryable and info.value.status_code is None
    assert len([r for r in caplog.records if "ConnectError" in r.getMessage()]) == 3


def test_from_settings_talks_to_the_sandbox(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, issuer_api_key=API_KEY, issuer_secret=SECRET.decode())
    app = create_sandbox_app(ledger_path=settings.sandbox_ledger_path, api_key=API_KEY, secret=SECRET)
    with serve_in_background(app) as url:
        port = int(url.rsplit(":", 1)[1])
        settings = load_settings(data_dir=tmp_path, issuer_api_key=API_KEY, issuer_secret=SECRET.decode(),
                                 sandbox_issuer_port=port)
        with IssuerClient.from_settings(settings) as issuer:
            assert issuer.base_url == url
            assert issuer.mint_batch(mint_request(), idempotency_key="k").chain == "sandbox-chain"


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = time.time()
    later = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert 28 <= parse_retry_after(later, now=now) <= 31  # type: ignore[operator]
    assert parse_retry_after(format_datetime(datetime.fromtimestamp(now - 30, UTC), usegmt=True), now=now) == 0.0


# -- receipts are checked; what the issuer holds can be asked for ----------------------------------


def _receipt_issuer(bend: str) -> FastAPI:
    """An issuer of our own over real HTTP that answers a receipt bent in one way."""
    app = FastAPI()

    @app.post("/v1/mint-batches")
    async def mint(request: Request) -> Response:
        sent = MintRequest.model_validate_json(await request.body())
        tokens = [MintedToken(item_ref=i.item_ref, token_id=f"bent:{n}", tx_hash=f"0x{n}") for n, i in enumerate(sent.items)]
        chain, batch_ref = "bent-chain" if bend == "chain" else "sandbox-chain", sent.batch_ref
        if bend == "token twice":
            tokens[1] = tokens[1].model_copy(update={"token_id": tokens[0].token_id})
        elif bend == "item twice":
            tokens[1] = tokens[1].model_copy(update={"item_ref": tokens[0].item_ref})
        elif bend == "other items":
            tokens[1] = tokens[1].model_copy(update={"item_ref": "relicflow:item:999"})
        elif bend == "other batch":
            batch_ref = "someone-elses"
        receipt = MintReceipt(batch_ref=batch_ref, status="minted", chain=chain, minted_at=datetime.now(UTC), tokens=tokens)
        return Response(receipt.model_dump_json(), status_code=201, media_type="application/json")

    return app


@pytest.mark.parametrize(("bend", "code"), [
    ("token twice", "receipt_token_twice"), ("item twice", "receipt_item_twice"), ("chain", "receipt_wrong_chain"),
    ("other items", "receipt_items_mismatch"), ("other batch", "receipt_wrong_batch"),
])
def test_a_receipt_that_cannot_be_true_is_refused_in_both_languages(bend: str, code: str) -> None:
    from relicflow.errors import BadReceipt

    with serve_in_background(_receipt_issuer(bend)) as url, client(url, chain="sandbox-chain") as issuer:
        with pytest.raises(BadReceipt) as info:
            issuer.mint_batch(mint_request(), idempotency_key="k")
    assert info.value.code == code and not info.value.retryable
    assert info.value.message_en and info.value.message_zh and info.value.message_zh != info.value.message_en
    assert code in info.value.both() and info.value.message_zh in info.value.both()


def test_any_chain_is_accepted_only_when_none_is_configured() -> None:
    with serve_in_background(_receipt_issuer("chain")) as url, client(url) as issuer:
        assert issuer.mint_batch(mint_request(), idempotency_key="k").chain == "bent-chain"


def test_a_409_carries_the_issuers_code_and_items_and_holdings_name_the_tokens(ledger: Path) -> None:
    with sandbox(ledger) as url, client(url, chain="sandbox-chain") as issuer:
        first = issuer.mint_batch(mint_request("batch-1", ("relicflow:item:1", "relicflow:item:2")), idempotency_key="k1")
        later = mint_request("batch-2", ("relicflow:item:2", "relicflow:item:3"))
        with pytest.raises(IssuerError) as info:
            issuer.mint_batch(later, idempotency_key="k2")
        assert info.value.code == "already_minted" and info.value.item_refs == ("relicflow:item:2",)
        held = issuer.holdings(later)
        assert held.receipt is None
        assert [(t.item_ref, t.token_id, t.batch_ref, t.chain) for t in held.tokens] == [
            ("relicflow:item:2", first.tokens[1].token_id, "batch-1", "sandbox-chain")]
        assert issuer.holdings(mint_request("batch-1", ("relicflow:item:1", "relicflow:item:2"))).receipt == first
        assert [t.item_ref for t in issuer.list_tokens(item_refs=["relicflow:item:1", "relicflow:item:9"])] == ["relicflow:item:1"]
        assert len(issuer.list_tokens(batch_ref="batch-1")) == 2


def test_asking_for_many_items_goes_in_groups_never_for_the_whole_ledger(ledger: Path) -> None:
    from relicflow.issuer_client import TOKEN_QUERY_CHUNK

    queries: list[str] = []
    refs = [f"relicflow:item:{n}" for n in range(1, 2 * TOKEN_QUERY_CHUNK + 30)]
    with sandbox(ledger) as url:
        with client(url) as issuer:
            issuer.mint_batch(mint_request("b", tuple(refs[:3])), idempotency_key="k")
        hook = {"request": [lambda r: queries.append(r.url.query.decode())]}
        with client(url) as issuer:
            issuer._http.event_hooks = hook
            assert len(issuer.list_tokens(item_refs=refs)) == 3
    assert len(queries) == 3 and all(q.count("item_ref=") <= TOKEN_QUERY_CHUNK for q in queries)

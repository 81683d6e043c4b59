"""The sandbox issuer over real HTTP on loopback: authentication, Idempotency-Key semantics, one token per item."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from relicflow.background_server import serve_in_background
from chunked_sender import send_chunked
from relicflow.sandbox_issuer import Ledger, create_sandbox_app
from relicflow.signing import sign_request
from schemas.issuer import MintItem, MintRequest, ReviewAttestation, metadata_sha256

API_KEY = "test-key"
SECRET = b"test-secret"


def make_request(batch_ref: str = "batch-1", refs: tuple[str, ...] = ("relicflow:item:1", "relicflow:item:2")) -> MintRequest:
    items = []
    for ref in refs:
        metadata = {"item_ref": ref, "藏品名称": "青铜鼎", "年代": "西周"}
        items.append(
            MintItem(
                item_ref=ref,
                accession_number=f"A-{ref.rsplit(':', 1)[-1]}",
                name="青铜鼎",
                image_sha256=hashlib.sha256(ref.encode()).hexdigest(),
                metadata_uri=f"https://museum.example/meta/{ref.rsplit(':', 1)[-1]}.json",
                metadata_sha256=metadata_sha256(metadata),
                metadata=metadata,
                review=ReviewAttestation(
                    approved_by=["reviewer-a"], approved_at=datetime(2026, 11, 3, 9, 30, tzinfo=UTC), decision_ids=[7]
                ),
            )
        )
    return MintRequest(batch_ref=batch_ref, recipient="museum-treasury", items=items)


@contextmanager
def sandbox(ledger: Path, **kwargs: object) -> Iterator[str]:
    app = create_sandbox_app(ledger_path=ledger, api_key=API_KEY, secret=SECRET, **kwargs)  # type: ignore[arg-type]
    with serve_in_background(app) as url:
        yield url


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "issuer" / "ledger.sqlite3"


@pytest.fixture
def url(ledger: Path) -> Iterator[str]:
    with sandbox(ledger) as base:
        yield base


def signed_headers(body: bytes, *, key: str | None = "key-1", api_key: str = API_KEY, secret: bytes = SECRET,
                   timestamp: int | None = None, sign: bool = True) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {"X-Api-Key": api_key, "Content-Type": "application/json"}
    if sign:
        headers["X-Timestamp"] = str(ts)
        headers["X-Signature"] = sign_request(secret, method="POST", path="/v1/mint-batches", timestamp=ts, body=body,
                                              idempotency_key=key)
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def post(url: str, body: bytes | MintRequest, *, key: str | None = "key-1", api_key: str = API_KEY,
         secret: bytes = SECRET, timestamp: int | None = None, sign: bool = True) -> httpx.Response:
    raw = body.body_bytes() if isinstance(body, MintRequest) else body
    headers = signed_headers(raw, key=key, api_key=api_key, secret=secret, timestamp=timestamp, sign=sign)
    return httpx.post(f"{url}/v1/mint-batches", content=raw, headers=headers, timeout=10)


def get(url: str, path: str) -> httpx.Response:
    ts = int(time.time())
    headers = {"X-Api-Key": API_KEY, "X-Timestamp": str(ts),
               "X-Signature": sign_request(SECRET, method="GET", path=path, timestamp=ts, body=b"")}
    return httpx.get(f"{url}{path}", headers=headers, timeout=10)


def ledger_tokens(url: str) -> list[dict]:
    response = get(url, "/v1/tokens")
    assert response.status_code == 200, response.text
    return response.json()["tokens"]


def assert_one_token_per_item(url: str) -> None:
    refs = [t["item_ref"] for t in ledger_tokens(url)]
    assert len(refs) == len(set(refs))


def test_mint_returns_one_token_per_item(url: str) -> None:
    response = post(url, make_request())
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers
    receipt = response.json()
    assert receipt["batch_ref"] == "batch-1" and receipt["status"] == "minted" and receipt["chain"] == "sandbox-chain"
    assert [t["item_ref"] for t in receipt["tokens"]] == ["relicflow:item:1", "relicflow:item:2"]
    assert [t["token_id"] for t in receipt["tokens"]] == ["sandbox-chain:00000001", "sandbox-chain:00000002"]
    assert all(t["tx_hash"].startswith("0x") and len(t["tx_hash"]) == 66 for t in receipt["tokens"])
    assert [(t["item_ref"], t["batch_ref"]) for t in ledger_tokens(url)] == [
        ("relicflow:item:1", "batch-1"), ("relicflow:item:2", "batch-1")]
    assert get(url, "/v1/mint-batches/batch-1").content == response.content
    assert httpx.get(f"{url}/healthz").json()["status"] == "ok"


def test_replay_with_same_key_returns_the_stored_response(url: str) -> None:
    first = post(url, make_request())
    again = post(url, make_request())
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert len(ledger_tokens(url)) == 2


def test_same_key_with_another_payload_is_422_and_mints_nothing(url: str) -> None:
    assert post(url, make_request()).status_code == 201
    other = post(url, make_request(batch_ref="batch-2", refs=("relicflow:item:3",)))
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["code"] == "idempotency_key_reused"
    assert len(ledger_tokens(url)) == 2


def test_missing_idempotency_key_is_400(url: str) -> None:
    response = post(url, make_request(), key=None)
    assert response.status_code == 400 and response.json()["code"] == "missing_idempotency_key"
    assert post(url, make_request(), key="bad key\x01").json()["code"] == "invalid_idempotency_key"
    assert ledger_tokens(url) == []


def test_authentication_failures_are_401_with_a_stable_code(url: str) -> None:
    request = make_request()
    cases = {
        "unauthorized": post(url, request, api_key="wrong"),
        "bad_signature": post(url, request, secret=b"not-the-secret"),
        "stale_timestamp": post(url, request, timestamp=int(time.time()) - 3600),
        "missing_signature": post(url, request, sign=False),
    }
    for code, response in cases.items():
        assert response.status_code == 401, code
        assert response.json()["code"] == code
    assert httpx.get(f"{url}/v1/tokens").status_code == 401
    assert ledger_tokens(url) == []


def test_invalid_body_is_422_invalid_request(url: str) -> None:
    body = make_request().model_dump(mode="json")
    body["items"].append(body["items"][0])
    response = post(url, json.dumps(body).encode())
    assert response.status_code == 422 and response.json()["code"] == "invalid_request"
    assert "unique" in response.json()["detail"]


def test_concurrent_requests_with_one_key_mint_once(ledger: Path) -> None:
    with sandbox(ledger, mint_delay_s=0.3) as url:
        barrier = threading.Barrier(2)
        responses: list[httpx.Response] = []

        def send() -> None:
            barrier.wait()
            responses.append(post(url, make_request()))

        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fresh = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
        others = [r for r in responses if r not in fresh]
        assert len(fresh) == 1 and len(others) == 1
        other = others[0]
        assert (other.status_code == 409 and other.json()["code"] == "request_in_flight") or (
            other.headers.get("Idempotent-Replayed") == "true" and other.content == fresh[0].content)
        assert len(ledger_tokens(url)) == 2
        replay = post(url, make_request())  # once finished, the key replays
        assert replay.headers["Idempotent-Replayed"] == "true" and replay.content == fresh[0].content


def test_concurrent_batches_sharing_an_item_mint_it_once_and_never_half_a_batch(url: str) -> None:
    a = make_request("batch-a", ("relicflow:item:1", "relicflow:item:2", "relicflow:item:3"))
    b = make_request("batch-b", ("relicflow:item:4", "relicflow:item:3", "relicflow:item:5"))
    barrier = threading.Barrier(2)
    results: dict[str, httpx.Response] = {}

    def send(name: str, request: MintRequest) -> None:
        barrier.wait()
        results[name] = post(url, request, key=f"key-{name}")

    threads = [threading.Thread(target=send, args=args) for args in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results.values()) == [201, 409]
    winner = next(r for r in results.values() if r.status_code == 201).json()["batch_ref"]
    loser = next(r for r in results.values() if r.status_code == 409).json()
    assert loser["code"] == "already_minted" and loser["item_refs"] == ["relicflow:item:3"]
    tokens = ledger_tokens(url)
    assert {t["batch_ref"] for t in tokens} == {winner} and len(tokens) == 3


def test_item_minted_in_another_batch_is_409_already_minted(url: str) -> None:
    assert post(url, make_request()).status_code == 201
    clash = post(url, make_request("batch-2", ("relicflow:item:9", "relicflow:item:2")), key="key-2")
    assert clash.status_code == 409
    assert clash.json()["code"] == "already_minted" and clash.json()["item_refs"] == ["relicflow:item:2"]
    assert "batch-1" in clash.json()["detail"]
    assert [t["item_ref"] for t in ledger_tokens(url)] == ["relicflow:item:1", "relicflow:item:2"]
    # the refusal is the key's final answer: replayed, not re-decided
    assert post(url, make_request("batch-2", ("relicflow:item:9", "relicflow:item:2")), key="key-2").headers[
        "Idempotent-Replayed"] == "true"
    same_batch_new_key = post(url, make_request(), key="key-3")
    assert same_batch_new_key.status_code == 409 and same_batch_new_key.json()["code"] == "batch_exists"


def test_restart_keeps_tokens_replays_and_the_token_sequence(ledger: Path) -> None:
    with sandbox(ledger) as url:
        first = post(url, make_request())
        assert first.status_code == 201
    with sandbox(ledger) as url:  # a new process would do exactly this: reopen the file
        assert len(ledger_tokens(url)) == 2
        replay = post(url, make_request())
        assert replay.headers["Idempotent-Replayed"] == "true" and replay.content == first.content
        nxt = post(url, make_request("batch-2", ("relicflow:item:3",)), key="key-2")
        assert nxt.json()["tokens"][0]["token_id"] == "sandbox-chain:00000003"
        assert get(url, "/v1/mint-batches/batch-1").content == first.content
        assert get(url, "/v1/mint-batches/nope").status_code == 404


def test_key_left_in_flight_by_a_crash_is_freed_on_reopen(ledger: Path) -> None:
    body = make_request().body_bytes()
    assert Ledger(ledger).claim("key-1", hashlib.sha256(body).hexdigest()) == "new"  # then the process "dies"
    with sandbox(ledger) as url:
        response = post(url, body)
        assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers


def test_a_failing_mint_transaction_leaves_nothing_behind(ledger: Path) -> None:
    store = Ledger(ledger)
    with sqlite3.connect(ledger) as conn:  # plant a token id the second item will collide with
        conn.execute("INSERT INTO batches VALUES ('old', 'k0', x'7b7d', '2026-01-01')")
        conn.execute("INSERT INTO tokens (chain, seq, token_id, item_ref, batch_ref, tx_hash) VALUES ('other', 1, 'sandbox-chain:00000002', 'x', 'old', '0x')")
    request = make_request()
    assert store.claim("key-1", "h") == "new"
    with pytest.raises(sqlite3.IntegrityError):
        store.mint("key-1", request, "sandbox-chain")
    assert [t.item_ref for t in store.tokens()] == ["x"]  # item 1 was inserted, then rolled back
    assert store.receipt("batch-1") is None
    assert store.claim("key-1", "h") == "in_flight"  # the claim itself was a separate, earlier commit


def test_fail_first_answers_503_before_doing_anything(ledger: Path) -> None:
    with sandbox(ledger, fail_first=2) as url:
        assert [post(url, make_request()).status_code for _ in range(3)] == [503, 503, 201]
        assert len(ledger_tokens(url)) == 2


# -- contract 2026-12: the key is signed; authentication and size limits come before the body --------


def test_a_captured_request_replayed_under_another_key_is_401(url: str) -> None:
    body = make_request().body_bytes()
    headers = signed_headers(body, key="key-1")
    headers["Idempotency-Key"] = "key-2"  # the attacker's (or a confused proxy's) new key, same signature
    replay = httpx.post(f"{url}/v1/mint-batches", content=body, headers=headers, timeout=10)
    assert replay.status_code == 401 and replay.json()["code"] == "bad_signature"
    assert ledger_tokens(url) == []
    assert post(url, make_request(), key="key-1").status_code == 201  # the genuine request still mints


def test_anonymous_and_badly_signed_requests_do_not_use_up_fail_first(ledger: Path) -> None:
    with sandbox(ledger, fail_first=1) as url:
        assert post(url, make_request(), api_key="stranger").status_code == 401
        assert post(url, make_request(), sign=False).status_code == 401
        assert post(url, make_request(), secret=b"guess").status_code == 401
        assert [post(url, make_request()).status_code for _ in range(2)] == [503, 201]


def test_an_anonymous_chunked_body_is_refused_before_it_is_read(url: str) -> None:
    total = 200 * 1024 * 1024
    outcome = send_chunked(url, "/v1/mint-batches", {"X-Api-Key": "stranger"}, total)
    assert outcome.status == 401 and b"unauthorized" in outcome.head
    assert b"connection: close" in outcome.head.lower()
    assert outcome.sent < total // 4  # the server answered and hung up; it did not take the body


def test_a_chunked_body_over_the_limit_is_413_as_soon_as_it_passes_it(url: str) -> None:
    from relicflow.sandbox_issuer import MAX_BODY_BYTES

    total = 8 * MAX_BODY_BYTES  # no Content-Length: only a running count can stop it
    outcome = send_chunked(url, "/v1/mint-batches", {"X-Api-Key": API_KEY}, total)
    assert outcome.status == 413 and b"payload_too_large" in outcome.head
    assert outcome.sent < total // 2
    assert ledger_tokens(url) == []


def test_tokens_can_be_asked_for_by_item_and_by_batch(url: str) -> None:
    assert post(url, make_request("batch-1", ("relicflow:item:1", "relicflow:item:2"))).status_code == 201
    assert post(url, make_request("batch-2", ("relicflow:item:3",)), key="key-2").status_code == 201
    def refs(query: str) -> list[str]:
        response = get(url, f"/v1/tokens?{query}")
        assert response.status_code == 200, response.text
        return [t["item_ref"] for t in response.json()["tokens"]]

    assert refs("item_ref=relicflow:item:3&item_ref=relicflow:item:1&item_ref=relicflow:item:99") == [
        "relicflow:item:1", "relicflow:item:3"]
    assert refs("batch_ref=batch-1") == ["relicflow:item:1", "relicflow:item:2"]
    assert refs("batch_ref=batch-1&item_ref=relicflow:item:3") == []
    too_many = "&".join(f"item_ref=r{i}" for i in range(201))
    response = get(url, f"/v1/tokens?{too_many}")
    assert response.status_code == 400 and response.json()["code"] == "invalid_query"


def test_a_ledger_from_before_2027_01_gains_the_content_hashes_and_keeps_its_tokens(tmp_path: Path) -> None:
    path = tmp_path / "old-ledger.sqlite3"
    with sqlite3.connect(path) as conn:  # the 2026-12 layout: tokens without content_sha256
        conn.executescript("""
            CREATE TABLE batches (batch_ref TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL, receipt BLOB NOT NULL, minted_at TEXT NOT NULL);
            CREATE TABLE tokens (chain TEXT NOT NULL, seq INTEGER NOT NULL, token_id TEXT NOT NULL UNIQUE,
                item_ref TEXT NOT NULL UNIQUE, batch_ref TEXT NOT NULL REFERENCES batches (batch_ref), tx_hash TEXT NOT NULL,
                PRIMARY KEY (chain, seq));
            INSERT INTO batches VALUES ('old', 'k0', x'7b7d', '2026-01-01');
            INSERT INTO tokens VALUES ('sandbox-chain', 1, 'sandbox-chain:00000001', 'relicflow:item:9', 'old', '0x');
        """)
    store = Ledger(path)
    assert [(t.item_ref, t.content_sha256) for t in store.tokens()] == [("relicflow:item:9", [])]
    request = make_request()
    assert store.claim("key-1", "h") == "new"
    store.mint("key-1", request, "sandbox-chain")
    minted = {t.item_ref: t.content_sha256 for t in store.tokens()}
    assert all(minted[item.item_ref] == ([i.sha256 for i in item.images] or [item.image_sha256]) for item in request.items)

"""The sandbox issuer: the reference implementation of the issuer contract (``schemas.issuer``).

It is the embedded default issuer and the thing the client is tested against, so it is strict where a
real issuer would be: API key (checked before a byte of the body is read), a body read as a stream
under a running size limit, HMAC signature with a time window covering the Idempotency-Key, Idempotency-Key semantics of the IETF
draft (missing 400, other payload 422, in flight 409, finished -> stored response replayed), and never
two tokens for one item. The ledger is a SQLite file; one request's mint is one transaction, so a crash
leaves either the whole batch or nothing, and the key's stored response is written in that same
transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.openapi.utils import get_openapi
from pydantic import ValidationError
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool

from relicflow.errors import SignatureError
from relicflow.signing import HEADER_IDEMPOTENT_REPLAYED, sha256_hex, verify_request
from schemas.issuer import CONTRACT_VERSION, IssuerProblem, LedgerToken, MintedToken, MintReceipt, MintRequest, TokenList

if TYPE_CHECKING:
    from relicflow.settings import Settings

MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_TOKEN_FILTER_REFS = 200  # item_ref values one GET /v1/tokens may ask for (the URL stays short)
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY, request_sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
    response_status INTEGER, response_type TEXT, response_body BLOB,
    created_at TEXT NOT NULL, finished_at TEXT);
CREATE TABLE IF NOT EXISTS batches (
    batch_ref TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL, receipt BLOB NOT NULL, minted_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    chain TEXT NOT NULL, seq INTEGER NOT NULL, token_id TEXT NOT NULL UNIQUE,
    item_ref TEXT NOT NULL UNIQUE,  -- the ledger never holds two tokens for one item
    batch_ref TEXT NOT NULL REFERENCES batches (batch_ref), tx_hash TEXT NOT NULL,
    content_sha256 TEXT NOT NULL DEFAULT '[]',  -- JSON list: the photographs the token stands for
    PRIMARY KEY (chain, seq));
"""


@dataclass(frozen=True)
class StoredResponse:
    status: int
    media_type: str
    body: bytes


def problem(status: int, code: str, title: str, detail: str = "", **extra: Any) -> StoredResponse:
    body = IssuerProblem(
        type=f"urn:relicflow:issuer:problem:{code}", title=title, status=status, detail=detail, code=code, **extra
    ).model_dump_json(exclude_none=True)
    return StoredResponse(status, PROBLEM_JSON, body.encode("utf-8"))


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Ledger:
    """The sandbox chain and the idempotency store, in one SQLite file.

    A connection per operation and ``BEGIN IMMEDIATE`` for every write: writers are serialised by
    SQLite itself, across uvicorn's worker threads and even across processes.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connection() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            if "content_sha256" not in {row[1] for row in conn.execute("PRAGMA table_info(tokens)")}:  # a ledger from 2026-12
                conn.execute("ALTER TABLE tokens ADD COLUMN content_sha256 TEXT NOT NULL DEFAULT '[]'")
            # A key left in flight by a process that died never reached its mint transaction (the
            # mint and the 'done' update commit together), so nothing was minted: free the key.
            # Assumes one sandbox process per ledger file.
            conn.execute("DELETE FROM idempotency_keys WHERE state = 'in_flight'")

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def claim(self, key: str, request_sha256: str) -> str | StoredResponse:
        """Claim ``key`` for this request: ``"new"``, ``"mismatch"``, ``"in_flight"`` or the stored response."""
        with self._transaction() as conn:
            row = conn.execute("SELECT request_sha256, state, response_status, response_type, response_body"
                               " FROM idempotency_keys WHERE key = ?", (key,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO idempotency_keys (key, request_sha256, state, created_at)"
                             " VALUES (?, ?, 'in_flight', ?)", (key, request_sha256, _now_iso()))
                return "new"
            stored_hash, state, status, media_type, body = row
            if stored_hash != request_sha256:
                return "mismatch"
            if state == "in_flight":
                return "in_flight"
            return StoredResponse(status, media_type, bytes(body))

    def release(self, key: str) -> None:
        """Forget an in-flight key whose request failed before its mint committed (so a retry can run)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM idempotency_keys WHERE key = ? AND state = 'in_flight'", (key,))

    def mint(self, key: str, request: MintRequest, chain: str) -> StoredResponse:
        """Mint the whole batch and store the key's response, all in one transaction."""
        with self._transaction() as conn:
            response = self._mint_in(conn, request, chain, key)
            updated = conn.execute(
                "UPDATE idempotency_keys SET state = 'done', response_status = ?, response_type = ?,"
                " response_body = ?, finished_at = ? WHERE key = ? AND state = 'in_flight'",
                (response.status, response.media_type, response.body, _now_iso(), key),
            ).rowcount
            if updated != 1:
                raise RuntimeError(f"idempotency key {key!r} is no longer in flight")
            return response

    @staticmethod
    def _mint_in(conn: sqlite3.Connection, request: MintRequest, chain: str, key: str) -> StoredResponse:
        if conn.execute("SELECT 1 FROM batches WHERE batch_ref = ?", (request.batch_ref,)).fetchone():
            return problem(409, "batch_exists", "Batch already minted",
                           f"batch {request.batch_ref} was minted under another Idempotency-Key; GET it instead")
        refs = [item.item_ref for item in request.items]
        marks = ",".join("?" * len(refs))
        clashes = conn.execute(f"SELECT item_ref, batch_ref FROM tokens WHERE item_ref IN ({marks})"
                               " ORDER BY item_ref", refs).fetchall()
        if clashes:
            listed = ", ".join(f"{ref} (in {batch})" for ref, batch in clashes)
            return problem(409, "already_minted", "Item already minted", f"already minted: {listed}",
                           item_refs=[ref for ref, _ in clashes])
        (last,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM tokens WHERE chain = ?", (chain,)).fetchone()
        minted_at = datetime.now(UTC)
        tokens: list[MintedToken] = []
        for n, item in enumerate(request.items, start=last + 1):
            token_id = f"{chain}:{n:08d}"
            seed = f"{chain}\n{token_id}\n{item.item_ref}\n{item.metadata_sha256}\n{request.batch_ref}"
            tokens.append(MintedToken(item_ref=item.item_ref, token_id=token_id, tx_hash="0x" + sha256_hex(seed.encode())))
        receipt = MintReceipt(
            batch_ref=request.batch_ref, status="minted", chain=chain, tokens=tokens, minted_at=minted_at
        ).model_dump_json().encode("utf-8")
        conn.execute("INSERT INTO batches (batch_ref, idempotency_key, receipt, minted_at) VALUES (?, ?, ?, ?)",
                     (request.batch_ref, key, receipt, minted_at.isoformat()))
        conn.executemany(
            "INSERT INTO tokens (chain, seq, token_id, item_ref, batch_ref, tx_hash, content_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(chain, last + 1 + i, t.token_id, t.item_ref, request.batch_ref, t.tx_hash,
              json.dumps([image.sha256 for image in item.images] or [item.image_sha256]))
             for i, (t, item) in enumerate(zip(tokens, request.items))],
        )
        return StoredResponse(201, JSON, receipt)

    def receipt(self, batch_ref: str) -> bytes | None:
        with self._connection() as conn:
            row = conn.execute("SELECT receipt FROM batches WHERE batch_ref = ?", (batch_ref,)).fetchone()
        return None if row is None else bytes(row[0])

    def tokens(self, *, item_refs: list[str] | None = None, batch_ref: str | None = None) -> list[LedgerToken]:
        """Tokens of the ledger, optionally only those of ``item_refs`` and/or of one batch."""
        where, args = [], []
        if item_refs is not None:
            where.append(f"item_ref IN ({','.join('?' * len(item_refs))})")
            args += item_refs
        if batch_ref is not None:
            where.append("batch_ref = ?")
            args.append(batch_ref)
        sql = "SELECT item_ref, token_id, batch_ref, tx_hash, content_sha256 FROM tokens"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY chain, seq"
        with self._connection() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [LedgerToken(item_ref=r[0], token_id=r[1], batch_ref=r[2], tx_hash=r[3], content_sha256=json.loads(r[4]))
                for r in rows]


class _FailureBudget:
    """``fail_first``: how many more authenticated mint POSTs answer 503 before anything is minted."""

    def __init__(self, n: int) -> None:
        self._left = max(0, n)
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True


def _respond(stored: StoredResponse, *, replayed: bool = False, close: bool = False) -> Response:
    """``close``: the request body was not (fully) read; end the connection instead of draining it."""
    headers = {HEADER_IDEMPOTENT_REPLAYED: "true"} if replayed else {}
    if close:
        headers["Connection"] = "close"
    return Response(content=stored.body, status_code=stored.status, media_type=stored.media_type, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, read chunk by chunk; None as soon as it passes ``limit`` (the rest is never read)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _signed_path(request: Request) -> str:
    """The path as it was on the wire (percent-encoding kept) plus the query string: what the client signed."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    return raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")


def _parse_idempotency_key(value: str | None) -> str | StoredResponse:
    if value is None or not value.strip():
        return problem(400, "missing_idempotency_key", "Idempotency-Key required", "send an Idempotency-Key header")
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':  # the draft's structured-field string form
        key = key[1:-1]
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        return problem(400, "invalid_idempotency_key", "Invalid Idempotency-Key", "1 to 255 printable ASCII characters")
    return key


_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": IssuerProblem, "description": text, "content": {PROBLEM_JSON: {}}}
    for code, text in {
        400: "Idempotency-Key missing or malformed, or a query asks for too much",
        401: "API key or signature missing, wrong or stale",
        409: "Same key still in flight (retry later), or an item/batch already minted (final)",
        413: "Body too large",
        422: "Invalid body, or the Idempotency-Key was first used with another body",
        503: "Temporarily unavailable (retry)",
    }.items()
}

_DESCRIPTION = f"""Issuer contract {CONTRACT_VERSION} (reference implementation: relicflow's sandbox issuer).

Every /v1 request carries `X-Api-Key`, `X-Timestamp` (Unix seconds, ±300 s) and `X-Signature`: hex
HMAC-SHA256 over `timestamp\\nMETHOD\\npath?query\\nIdempotency-Key\\nsha256_hex(body)` (the key's line is
empty when the request has none; since 2026-12 the key is signed, so a captured request cannot be
replayed under another key). The API key is checked before the body is read; bodies over 32 MiB are 413
as soon as they pass the limit. A mint needs an `Idempotency-Key`: the same key and body replay the
stored response (`Idempotent-Replayed: true`); another body is 422; a retry while the first is in flight
is 409 `request_in_flight`. An item is minted at most once, ever: 409 `already_minted` (with `item_refs`)
and `batch_exists` are final answers, and the client then asks what the issuer holds:
`GET /v1/mint-batches/{{batch_ref}}` and `GET /v1/tokens?item_ref=…&batch_ref=…` (at most
{MAX_TOKEN_FILTER_REFS} `item_ref` values per request). Errors are RFC 9457 problem details with a
stable `code`."""


@dataclass(frozen=True)
class _Credentials:
    api_key: str | None
    timestamp: str | None
    signature: str | None


def _credentials(
    x_api_key: Annotated[str | None, Header(alias="X-Api-Key", description="The issuer-assigned API key.")] = None,
    x_timestamp: Annotated[str | None, Header(alias="X-Timestamp", description="Unix seconds.")] = None,
    x_signature: Annotated[str | None, Header(alias="X-Signature", description="Hex HMAC-SHA256.")] = None,
) -> _Credentials:
    return _Credentials(x_api_key, x_timestamp, x_signature)


Credentials = Annotated[_Credentials, Depends(_credentials)]


def create_sandbox_app(
    *,
    ledger_path: Path,
    api_key: str,
    secret: bytes,
    chain: str = "sandbox-chain",
    fail_first: int = 0,
    mint_delay_s: float = 0.0,
) -> FastAPI:
    """The sandbox issuer as an ASGI app over the ledger at ``ledger_path`` (created or reopened).

    ``fail_first``: the first N authenticated mint POSTs answer 503 before minting (anonymous or
    wrongly signed requests do not use them up). ``mint_delay_s``: pause
    between claiming the key and minting, to make the in-flight window observable in tests and demos.
    """
    ledger = Ledger(ledger_path)
    failures = _FailureBudget(fail_first)
    app = FastAPI(title="relicflow issuer contract", version=CONTRACT_VERSION, description=_DESCRIPTION,
                  docs_url=None, redoc_url=None)
    app.state.ledger = ledger

    def known_key(creds: _Credentials) -> StoredResponse | None:
        if creds.api_key is None or not _keys_equal(creds.api_key, api_key):
            return problem(401, "unauthorized", "Unauthorized", "missing or unknown X-Api-Key")
        return None

    def verify(request: Request, body: bytes, creds: _Credentials, idempotency_key: str | None = None) -> StoredResponse | None:
        try:
            verify_request(secret, method=request.method, path=_signed_path(request), timestamp=creds.timestamp,
                           body=body, signature=creds.signature, now=int(time.time()), idempotency_key=idempotency_key)
        except SignatureError as err:
            return problem(401, getattr(err, "code", "bad_signature"), "Signature rejected", str(err))
        return None

    def authenticate(request: Request, creds: _Credentials) -> StoredResponse | None:
        """API key and signature of a bodiless request."""
        return known_key(creds) or verify(request, b"", creds)

    def mint_blocking(key: str, request_sha256: str, request: MintRequest) -> Response:
        claim = ledger.claim(key, request_sha256)
        if isinstance(claim, StoredResponse):
            return _respond(claim, replayed=True)
        if claim == "mismatch":
            return _respond(problem(422, "idempotency_key_reused", "Idempotency-Key reused",
                                    "this Idempotency-Key was first used with a different body"))
        if claim == "in_flight":
            return _respond(problem(409, "request_in_flight", "Request in flight",
                                    "a request with this Idempotency-Key is still being processed; retry"))
        try:
            if mint_delay_s:
                time.sleep(mint_delay_s)
            return _respond(ledger.mint(key, request, chain))
        except BaseException:
            ledger.release(key)
            raise

    @app.post(
        "/v1/mint-batches", status_code=201, response_model=MintReceipt, responses=_PROBLEMS,
        operation_id="createMintBatch", summary="Mint one token per item of an approved batch",
        openapi_extra={"requestBody": {"required": True,
                                       "content": {JSON: {"schema": {"$ref": "#/components/schemas/MintRequest"}}}}},
    )
    async def create_mint_batch(
        request: Request,
        creds: Credentials,
        idempotency_key: Annotated[str | None, Header(
            alias="Idempotency-Key", description="Decided before the first try, reused on every retry.")] = None,
    ) -> Response:
        # Cheapest refusals first, before any of the body is read: an anonymous sender costs nothing.
        refused = known_key(creds)
        if refused:
            return _respond(refused, close=True)
        too_large = problem(413, "payload_too_large", "Payload too large", f"limit {MAX_BODY_BYTES} bytes")
        declared = request.headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _respond(too_large, close=True)
        body = await _read_body(request, MAX_BODY_BYTES)
        if body is None:
            return _respond(too_large, close=True)
        refused = verify(request, body, creds, idempotency_key)
        if refused:
            return _respond(refused)
        if failures.take():
            return _respond(problem(503, "unavailable", "Service unavailable", "sandbox fail_first"))
        key = _parse_idempotency_key(idempotency_key)
        if isinstance(key, StoredResponse):
            return _respond(key)
        try:
            mint_request = MintRequest.model_validate_json(body)
        except ValidationError as err:
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:20])
            return _respond(problem(422, "invalid_request", "Invalid mint request", detail))
        return await run_in_threadpool(mint_blocking, key, sha256_hex(body), mint_request)

    @app.get("/v1/mint-batches/{batch_ref}", response_model=MintReceipt, responses=_PROBLEMS,
             operation_id="getMintBatch", summary="Receipt of a minted batch (reconciliation)")
    def get_mint_batch(batch_ref: str, request: Request, creds: Credentials) -> Response:
        refused = authenticate(request, creds)
        receipt = None if refused else ledger.receipt(batch_ref)
        if receipt is None:
            return _respond(refused or problem(404, "not_found", "Unknown batch", f"no batch {batch_ref}"))
        return Response(content=receipt, media_type=JSON)

    @app.get("/v1/tokens", response_model=TokenList, responses=_PROBLEMS, operation_id="listTokens",
             summary="Tokens in the ledger, all or only those of some items and/or one batch (reconciliation)")
    def list_tokens(
        request: Request,
        creds: Credentials,
        item_ref: Annotated[list[str] | None, Query(description=(
            f"Only tokens of these items (repeat the parameter; at most {MAX_TOKEN_FILTER_REFS})."))] = None,
        batch_ref: Annotated[str | None, Query(description="Only tokens minted in this batch.")] = None,
    ) -> Response:
        refused = authenticate(request, creds)
        if refused:
            return _respond(refused)
        if item_ref is not None and len(item_ref) > MAX_TOKEN_FILTER_REFS:
            return _respond(problem(400, "invalid_query", "Too many item_ref values",
                                    f"at most {MAX_TOKEN_FILTER_REFS} item_ref values per request; split the query"))
        tokens = ledger.tokens(item_refs=item_ref, batch_ref=batch_ref)
        return Response(content=TokenList(tokens=tokens).model_dump_json(), media_type=JSON)

    @app.get("/healthz", operation_id="healthz", summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "contract_version": CONTRACT_VERSION, "chain": chain}

    def openapi() -> dict[str, Any]:
        # The mint body is read raw (the signature covers its exact bytes), so FastAPI does not see the
        # MintRequest model: publish its schema in the components ourselves.
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _, defs = models_json_schema([(MintRequest, "validation")], ref_template="#/components/schemas/{model}")
            document.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _keys_equal(given: str, expected: str) -> bool:
    """Constant-time API key comparison (digests first, so lengths leak nothing either)."""
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())


def run_sandbox_issuer(settings: Settings, *, host: str = "127.0.0.1", port: int | None = None, fail_first: int = 0) -> None:
    """Serve the sandbox issuer on the settings' ledger until interrupted (``relicflow sandbox-issuer``)."""
    app = create_sandbox_app(
        ledger_path=settings.sandbox_ledger_path,
        api_key=settings.issuer_api_key.get_secret_value(),
        secret=settings.issuer_secret.get_secret_value().encode("utf-8"),
        chain=settings.issuer_chain,
        fail_first=fail_first,
    )
    uvicorn.run(app, host=host, port=settings.sandbox_issuer_port if port is None else port, log_level="info")

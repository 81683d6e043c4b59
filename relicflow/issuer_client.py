"""HTTP client of the issuer contract: signed, idempotent, patient.

A mint is an external effect that must happen once. The caller decides the Idempotency-Key before the
first try (and stores it); this client sends the SAME key and the SAME bytes on every retry, so a
timeout after the issuer minted turns into a replay of the stored receipt, never a second mint. Only
transient answers are retried; a refusal is raised at once as ``IssuerError(retryable=False)`` with the
issuer's problem ``code``. A 409 or a timeout is not the end of the story: :meth:`IssuerClient.holdings`
asks the issuer what it already holds for a request (its batch, the tokens of its items), so the caller
can record it. Every receipt is checked before anyone records it (:func:`check_receipt`).
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from relicflow.errors import BadReceipt, IssuerError
from relicflow.signing import (
    HEADER_API_KEY,
    HEADER_IDEMPOTENCY_KEY,
    HEADER_IDEMPOTENT_REPLAYED,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    sign_request,
)
from schemas.issuer import IssuerProblem, LedgerToken, MintReceipt, MintRequest, TokenList

if TYPE_CHECKING:
    from relicflow.settings import Settings

log = logging.getLogger("relicflow.issuer")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
IN_FLIGHT_CODE = "request_in_flight"
CONFLICT_CODES = frozenset({"already_minted", "batch_exists"})  # final answers that call for a look at the ledger
TOKEN_QUERY_CHUNK = 100  # item_ref values per GET /v1/tokens (the contract allows 200)


@dataclass(frozen=True)
class FoundToken:
    """A token the issuer holds for one of our items, as its batch's receipt states it."""

    item_ref: str
    token_id: str
    tx_hash: str
    batch_ref: str
    chain: str


@dataclass
class Holdings:
    """What the issuer holds for a request: the batch itself (if minted) and tokens of its items."""

    receipt: MintReceipt | None = None
    tokens: list[FoundToken] = field(default_factory=list)


def _duplicates(values: Iterable[str]) -> list[str]:
    return sorted(v for v, n in Counter(values).items() if n > 1)


def check_receipt(request: MintRequest, receipt: MintReceipt, *, chain: str | None) -> None:
    """Raise :class:`BadReceipt` unless ``receipt`` is this batch's: its items once each, distinct
    token ids, on the expected chain (``None``: any chain)."""
    ref = request.batch_ref
    if receipt.batch_ref != ref:
        raise BadReceipt("receipt_wrong_batch", f"the issuer answered a receipt for batch {receipt.batch_ref} to batch {ref}",
                         f"批次 {ref} 收到的回执属于另一批次 {receipt.batch_ref}")
    if chain is not None and receipt.chain != chain:
        raise BadReceipt("receipt_wrong_chain",
                         f"the receipt of batch {ref} is for chain {receipt.chain!r}, but relicflow mints on {chain!r} "
                         "(setting RELICFLOW_ISSUER_CHAIN); nothing recorded",
                         f"批次 {ref} 的回执属于链 {receipt.chain!r}，而本系统配置的链是 {chain!r}（RELICFLOW_ISSUER_CHAIN），未记录")
    _check_tokens(ref, [(t.item_ref, t.token_id) for t in receipt.tokens])
    wanted = sorted(item.item_ref for item in request.items)
    got = sorted(token.item_ref for token in receipt.tokens)
    if got != wanted:
        raise BadReceipt("receipt_items_mismatch",
                         f"the receipt of batch {ref} holds {len(got)} tokens for other items than the {len(wanted)} sent",
                         f"批次 {ref} 的回执含 {len(got)} 个数字藏品，与发送的 {len(wanted)} 件藏品不一致")


def _check_tokens(ref: str, tokens: Sequence[tuple[str, str]]) -> None:
    twice = _duplicates(item for item, _ in tokens)
    if twice:
        raise BadReceipt("receipt_item_twice", f"the receipt of batch {ref} gives {', '.join(twice)} more than one token",
                         f"批次 {ref} 的回执为 {', '.join(twice)} 给出了多个数字藏品编号")
    reused = _duplicates(token for _, token in tokens)
    if reused:
        raise BadReceipt("receipt_token_twice",
                         f"the receipt of batch {ref} gives token id {', '.join(reused)} to more than one item",
                         f"批次 {ref} 的回执把同一数字藏品编号 {', '.join(reused)} 给了多件藏品")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _problem(response: httpx.Response) -> IssuerProblem | None:
    try:
        return IssuerProblem.model_validate_json(response.content)
    except ValidationError:
        return None


def _describe(response: httpx.Response) -> str:
    problem = _problem(response)
    if problem is None:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    return f"HTTP {response.status_code} {problem.code}: {problem.detail or problem.title}"


class IssuerClient:
    """Client of one issuer endpoint (the sandbox or a production issuer speaking the same contract)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        secret: bytes,
        timeout_s: float = 10,
        max_attempts: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30,
        transport: httpx.BaseTransport | None = None,
        chain: str | None = None,
    ) -> None:
        """``chain``: the chain receipts must be for (None: any; :meth:`from_settings` passes issuer_chain)."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._secret = secret
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.chain = chain
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> IssuerClient:
        """Client of ``settings.effective_issuer_url`` (the sandbox when no issuer_url is set).

        Refuses the sandbox's default credentials towards a real issuer here too: settings copied with
        ``model_copy`` skip the settings' own validation.
        """
        from relicflow.errors import ConfigurationError
        from relicflow.settings import default_credentials_problem

        problem = default_credentials_problem(settings.issuer_url, settings.issuer_api_key.get_secret_value(),
                                              settings.issuer_secret.get_secret_value())
        if problem:
            raise ConfigurationError(problem)
        kwargs: dict[str, object] = {
            "chain": settings.issuer_chain,
            "api_key": settings.issuer_api_key.get_secret_value(),
            "secret": settings.issuer_secret.get_secret_value().encode("utf-8"),
            "timeout_s": settings.issuer_timeout_s,
            "max_attempts": settings.issuer_max_attempts,
        }
        kwargs.update(overrides)
        return cls(settings.effective_issuer_url, **kwargs)  # type: ignore[arg-type]

    # -- public API -----------------------------------------------------------------------------------

    def mint_batch(self, request: MintRequest, *, idempotency_key: str) -> MintReceipt:
        """Mint ``request`` once; returns the receipt, also when the issuer replays a finished request."""
        if not idempotency_key:
            raise ValueError("idempotency_key is required (decide and store it before the first try)")
        body = request.body_bytes()
        response = self._send(
            "POST", "/v1/mint-batches", body=body, idempotency_key=idempotency_key, what=f"mint {request.batch_ref}"
        )
        if response.status_code not in (200, 201):
            problem = _problem(response)
            raise IssuerError(f"issuer refused mint {request.batch_ref}: {_describe(response)}",
                              status_code=response.status_code, retryable=False,
                              code=problem.code if problem else None, item_refs=tuple(problem.item_refs or ()) if problem else ())
        receipt = self._receipt(response, f"mint {request.batch_ref}")
        check_receipt(request, receipt, chain=self.chain)
        replayed = response.headers.get(HEADER_IDEMPOTENT_REPLAYED, "").lower() == "true"
        log.info("mint %s: %d tokens on %s%s", request.batch_ref, len(receipt.tokens), receipt.chain,
                 " (replayed)" if replayed else "")
        return receipt

    def get_batch(self, batch_ref: str) -> MintReceipt | None:
        """The issuer's receipt for ``batch_ref``, or None if it never minted it (reconciliation)."""
        response = self._send("GET", f"/v1/mint-batches/{quote(batch_ref, safe='')}", what=f"get {batch_ref}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise IssuerError(f"issuer refused get {batch_ref}: {_describe(response)}",
                              status_code=response.status_code, retryable=False)
        return self._receipt(response, f"get {batch_ref}")

    def list_tokens(self, *, item_refs: Sequence[str] | None = None, batch_ref: str | None = None) -> list[LedgerToken]:
        """Tokens the issuer holds: all, or only those of ``item_refs`` and/or of one batch.

        ``item_refs`` go in groups of :data:`TOKEN_QUERY_CHUNK` per request, so asking about a whole
        catalogue never lists (or sends) the whole ledger at once.
        """
        if item_refs is None:
            return self._tokens({} if batch_ref is None else {"batch_ref": batch_ref})
        refs = sorted(set(item_refs))
        tokens: list[LedgerToken] = []
        for i in range(0, len(refs), TOKEN_QUERY_CHUNK):
            params: dict[str, str | list[str]] = {"item_ref": refs[i:i + TOKEN_QUERY_CHUNK]}
            if batch_ref is not None:
                params["batch_ref"] = batch_ref
            tokens += self._tokens(params)
        return tokens

    def holdings(self, request: MintRequest) -> Holdings:
        """What the issuer already holds for ``request``: its batch's receipt, or the tokens of its items.

        Tokens found in other batches are taken from those batches' receipts (so their chain is known
        and checked) and must agree with the ledger listing; anything inconsistent is a :class:`BadReceipt`.
        """
        receipt = self.get_batch(request.batch_ref)
        if receipt is not None:
            check_receipt(request, receipt, chain=self.chain)
            return Holdings(receipt=receipt)
        listed = self.list_tokens(item_refs=[item.item_ref for item in request.items])
        return Holdings(tokens=self.confirm(listed))

    def confirm(self, listed: Sequence[LedgerToken]) -> list[FoundToken]:
        """Ledger tokens confirmed by the receipts of the batches they were minted in."""
        _check_tokens("(ledger)", [(t.item_ref, t.token_id) for t in listed])
        found: list[FoundToken] = []
        for batch_ref in sorted({t.batch_ref for t in listed}):
            receipt = self.get_batch(batch_ref)
            if receipt is None:
                raise BadReceipt("ledger_batch_missing", f"the issuer lists tokens of batch {batch_ref} but has no receipt for it",
                                 f"发行方列出了批次 {batch_ref} 的数字藏品，却没有该批次的回执")
            if self.chain is not None and receipt.chain != self.chain:
                raise BadReceipt("receipt_wrong_chain", f"batch {batch_ref} was minted on chain {receipt.chain!r}, not {self.chain!r} "
                                 "(setting RELICFLOW_ISSUER_CHAIN); nothing recorded",
                                 f"批次 {batch_ref} 发行在链 {receipt.chain!r} 上，不是配置的 {self.chain!r}（RELICFLOW_ISSUER_CHAIN），未记录")
            _check_tokens(batch_ref, [(t.item_ref, t.token_id) for t in receipt.tokens])
            stated = {t.item_ref: t for t in receipt.tokens}
            for token in (t for t in listed if t.batch_ref == batch_ref):
                minted = stated.get(token.item_ref)
                if minted is None or (minted.token_id, minted.tx_hash) != (token.token_id, token.tx_hash):
                    raise BadReceipt("ledger_receipt_mismatch",
                                     f"the issuer lists token {token.token_id} of {token.item_ref} in batch {batch_ref}, "
                                     "but that batch's receipt says otherwise",
                                     f"发行方列出的 {token.item_ref} 的数字藏品 {token.token_id} 与批次 {batch_ref} 的回执不符")
                found.append(FoundToken(token.item_ref, token.token_id, token.tx_hash, batch_ref, receipt.chain))
        return found

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> IssuerClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------------

    def _tokens(self, params: dict[str, str | list[str]]) -> list[LedgerToken]:
        response = self._send("GET", "/v1/tokens", params=params, what="list tokens")
        if response.status_code != 200:
            raise IssuerError(f"issuer refused list tokens: {_describe(response)}",
                              status_code=response.status_code, retryable=False)
        return TokenList.model_validate_json(response.content).tokens

    def _build(self, method: str, path: str, body: bytes, idempotency_key: str | None,
               params: dict[str, str | list[str]] | None = None) -> httpx.Request:
        """A freshly signed request: new timestamp each attempt, same body and key (the key is signed too)."""
        headers = {HEADER_API_KEY: self._api_key, "Accept": "application/json"}
        if body:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers[HEADER_IDEMPOTENCY_KEY] = idempotency_key
        request = self._http.build_request(method, path, content=body, headers=headers, params=params)
        timestamp = int(time.time())
        # Sign the path exactly as it goes on the wire (base path prefix, percent-encoding, query).
        signed_path = request.url.raw_path.decode("ascii")
        request.headers[HEADER_TIMESTAMP] = str(timestamp)
        request.headers[HEADER_SIGNATURE] = sign_request(
            self._secret, method=method, path=signed_path, timestamp=timestamp, body=body, idempotency_key=idempotency_key
        )
        return request

    def _send(self, method: str, path: str, *, body: bytes = b"", idempotency_key: str | None = None,
              params: dict[str, str | list[str]] | None = None, what: str) -> httpx.Response:
        """Send with retries; return the first non-transient response, raise after the last attempt."""
        last_error = "no attempt made"
        last_status: int | None = None
        for attempt in range(1, self.max_attempts + 1):
            wait: float | None = None
            try:
                response = self._http.send(self._build(method, path, body, idempotency_key, params))
            except httpx.TransportError as err:  # connection refused/reset, timeouts, protocol errors
                last_error, last_status = f"{type(err).__name__}: {err}", None
                log.warning("%s attempt %d/%d: %s", what, attempt, self.max_attempts, last_error)
            else:
                if not self._transient(response):
                    log.info("%s attempt %d/%d: HTTP %d", what, attempt, self.max_attempts, response.status_code)
                    return response
                last_error, last_status = _describe(response), response.status_code
                wait = parse_retry_after(response.headers.get("Retry-After"))
                log.warning("%s attempt %d/%d: %s", what, attempt, self.max_attempts, last_error)
            if attempt < self.max_attempts:
                time.sleep(self._backoff(attempt, wait))
        raise IssuerError(f"{what}: gave up after {self.max_attempts} attempts; last: {last_error}",
                          status_code=last_status, retryable=True)

    @staticmethod
    def _transient(response: httpx.Response) -> bool:
        if response.status_code in RETRYABLE_STATUS:
            return True
        if response.status_code == 409:  # only "still in flight" is worth waiting for
            problem = _problem(response)
            return problem is not None and problem.code == IN_FLIGHT_CODE
        return False

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter (half fixed, half random); a Retry-After wins, capped."""
        if retry_after is not None:
            return min(retry_after, self.backoff_max_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    @staticmethod
    def _receipt(response: httpx.Response, what: str) -> MintReceipt:
        try:
            return MintReceipt.model_validate_json(response.content)
        except ValidationError as err:
            raise IssuerError(f"{what}: issuer answered an invalid receipt: {err}",
                              status_code=response.status_code, retryable=False) from err

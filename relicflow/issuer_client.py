"""HTTP client of the issuer contract: signed, idempotent, patient.

A mint is an external effect that must happen once. The caller decides the Idempotency-Key before the
first try (and stores it); this client sends the SAME key and the SAME bytes on every retry, so a
timeout after the issuer minted turns into a replay of the stored receipt, never a second mint. Only
transient answers are retried; a refusal is raised at once as ``IssuerError(retryable=False)``.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from datetime import UTC
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from relicflow.errors import IssuerError
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
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._secret = secret
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> IssuerClient:
        """Client of ``settings.effective_issuer_url`` (the sandbox when no issuer_url is set)."""
        kwargs: dict[str, object] = {
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
            raise IssuerError(f"issuer refused mint {request.batch_ref}: {_describe(response)}",
                              status_code=response.status_code, retryable=False)
        receipt = self._receipt(response, f"mint {request.batch_ref}")
        self._check_receipt(request, receipt)
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

    def list_tokens(self) -> list[LedgerToken]:
        """Every token the issuer holds (reconciliation against the catalogue)."""
        response = self._send("GET", "/v1/tokens", what="list tokens")
        if response.status_code != 200:
            raise IssuerError(f"issuer refused list tokens: {_describe(response)}",
                              status_code=response.status_code, retryable=False)
        return TokenList.model_validate_json(response.content).tokens

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> IssuerClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------------

    def _build(self, method: str, path: str, body: bytes, idempotency_key: str | None) -> httpx.Request:
        """A freshly signed request: new timestamp each attempt, same body and key."""
        headers = {HEADER_API_KEY: self._api_key, "Accept": "application/json"}
        if body:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers[HEADER_IDEMPOTENCY_KEY] = idempotency_key
        request = self._http.build_request(method, path, content=body, headers=headers)
        timestamp = int(time.time())
        # Sign the path exactly as it goes on the wire (base path prefix, percent-encoding, query).
        signed_path = request.url.raw_path.decode("ascii")
        request.headers[HEADER_TIMESTAMP] = str(timestamp)
        request.headers[HEADER_SIGNATURE] = sign_request(
            self._secret, method=method, path=signed_path, timestamp=timestamp, body=body
        )
        return request

    def _send(self, method: str, path: str, *, body: bytes = b"", idempotency_key: str | None = None,
              what: str) -> httpx.Response:
        """Send with retries; return the first non-transient response, raise after the last attempt."""
        last_error = "no attempt made"
        last_status: int | None = None
        for attempt in range(1, self.max_attempts + 1):
            wait: float | None = None
            try:
                response = self._http.send(self._build(method, path, body, idempotency_key))
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

    @staticmethod
    def _check_receipt(request: MintRequest, receipt: MintReceipt) -> None:
        """A receipt must be for this batch and hold exactly one token per requested item."""
        wanted = sorted(item.item_ref for item in request.items)
        got = sorted(token.item_ref for token in receipt.tokens)
        if receipt.batch_ref != request.batch_ref or got != wanted:
            raise IssuerError(
                f"issuer receipt does not match request {request.batch_ref}: receipt for {receipt.batch_ref} "
                f"with {len(got)} tokens for {len(wanted)} items",
                retryable=False,
            )


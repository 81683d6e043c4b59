"""HMAC-SHA256 signing of issuer requests, shared by the client and the sandbox issuer.

The signature covers the timestamp, the method, the path (as sent, with its query string), the
Idempotency-Key header (empty when there is none) and the SHA-256 of the exact body bytes, so neither a
replayed old request nor an edited body passes, and a captured request cannot be replayed under another
Idempotency-Key (which would otherwise be a new request to the issuer). The timestamp window bounds
replays; the signed Idempotency-Key makes any replay inside it harmless.
"""

from __future__ import annotations

import hashlib
import hmac

from relicflow.errors import SignatureError

HEADER_API_KEY = "X-Api-Key"
HEADER_TIMESTAMP = "X-Timestamp"
HEADER_SIGNATURE = "X-Signature"
HEADER_IDEMPOTENCY_KEY = "Idempotency-Key"
HEADER_IDEMPOTENT_REPLAYED = "Idempotent-Replayed"

DEFAULT_TOLERANCE_S = 300


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def string_to_sign(*, method: str, path: str, timestamp: int, body: bytes, idempotency_key: str | None = None) -> str:
    """Contract 2026-12: ``timestamp\\nMETHOD\\npath?query\\nIdempotency-Key\\nsha256_hex(body)``."""
    return f"{timestamp}\n{method.upper()}\n{path}\n{idempotency_key or ''}\n{sha256_hex(body)}"


def sign_request(secret: bytes, *, method: str, path: str, timestamp: int, body: bytes, idempotency_key: str | None = None) -> str:
    """Hex HMAC-SHA256 of the string to sign; goes in ``X-Signature``."""
    message = string_to_sign(method=method, path=path, timestamp=int(timestamp), body=body, idempotency_key=idempotency_key)
    return hmac.new(secret, message.encode("utf-8"), hashlib.sha256).hexdigest()


def _fail(code: str, message: str) -> SignatureError:
    # errors.SignatureError has no code field; attach one so the sandbox can answer a stable problem code.
    err = SignatureError(message, status_code=401, retryable=False)
    err.code = code  # type: ignore[attr-defined]
    return err


def verify_request(
    secret: bytes,
    *,
    method: str,
    path: str,
    timestamp: int | str | None,
    body: bytes,
    signature: str | None,
    now: int,
    idempotency_key: str | None = None,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """Raise :class:`SignatureError` unless the request is signed with ``secret`` within the window.

    The error's ``code`` attribute is ``missing_signature``, ``stale_timestamp`` or ``bad_signature``.
    The timestamp is checked before the HMAC so a stale request is reported as stale, not as wrong.
    """
    if timestamp is None or str(timestamp).strip() == "":
        raise _fail("missing_signature", f"missing {HEADER_TIMESTAMP} header")
    if not signature:
        raise _fail("missing_signature", f"missing {HEADER_SIGNATURE} header")
    try:
        ts = int(str(timestamp).strip())
    except ValueError:
        raise _fail("bad_signature", f"{HEADER_TIMESTAMP} is not an integer number of seconds") from None
    if abs(now - ts) > tolerance_s:
        raise _fail(
            "stale_timestamp",
            f"{HEADER_TIMESTAMP} {ts} is {now - ts:+d} s from the server clock (allowed ±{tolerance_s} s)",
        )
    expected = sign_request(secret, method=method, path=path, timestamp=ts, body=body, idempotency_key=idempotency_key)
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().lower().encode("ascii", "replace")):
        raise _fail("bad_signature", "signature does not match the request (wrong secret, path, Idempotency-Key or body)")

"""Request signing: what is covered by the signature, and the three ways a request is refused."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from relicflow.errors import IssuerError, SignatureError
from relicflow.signing import sign_request, verify_request

SECRET = b"shared-secret"
BODY = '{"batch_ref":"b-1","name":"青铜鼎"}'.encode()
NOW = 1_800_000_000


def _sig(**overrides: object) -> str:
    args: dict = {"method": "post", "path": "/v1/mint-batches", "timestamp": NOW, "body": BODY} | overrides
    return sign_request(SECRET, **args)


def _verify(signature: str | None, **overrides: object) -> None:
    args: dict = {
        "method": "POST", "path": "/v1/mint-batches", "timestamp": NOW, "body": BODY, "signature": signature,
        "now": NOW,
    } | overrides
    verify_request(SECRET, **args)


def test_signature_is_hmac_sha256_of_the_documented_string() -> None:
    message = f"{NOW}\nPOST\n/v1/mint-batches\nkey-1\n{hashlib.sha256(BODY).hexdigest()}".encode()
    assert _sig(idempotency_key="key-1") == hmac.new(SECRET, message, hashlib.sha256).hexdigest()
    without_key = f"{NOW}\nPOST\n/v1/mint-batches\n\n{hashlib.sha256(BODY).hexdigest()}".encode()
    assert _sig() == hmac.new(SECRET, without_key, hashlib.sha256).hexdigest()  # no key: an empty line
    assert len(_sig()) == 64 and _sig() == _sig(method="POST")


def test_the_idempotency_key_is_covered_a_replay_under_another_key_fails() -> None:
    signed = _sig(idempotency_key="key-1")
    _verify(signed, idempotency_key="key-1")
    for other in ("key-2", None, ""):
        with pytest.raises(SignatureError, match="Idempotency-Key") as info:
            _verify(signed, idempotency_key=other)
        assert info.value.code == "bad_signature"  # type: ignore[attr-defined]


def test_valid_signature_passes_inside_the_window() -> None:
    _verify(_sig())
    _verify(_sig(timestamp=NOW - 299), timestamp=NOW - 299)  # clocks a little apart, both ways
    _verify(_sig(timestamp=NOW + 299), timestamp=NOW + 299)
    _verify(_sig(), timestamp=str(NOW))  # header value arrives as a string
    _verify(_sig().upper())


@pytest.mark.parametrize(
    "change",
    [
        {"body": BODY + b" "},
        {"path": "/v1/mint-batches?x=1"},
        {"method": "PUT"},
    ],
)
def test_any_change_to_the_request_breaks_the_signature(change: dict) -> None:
    with pytest.raises(SignatureError, match="does not match") as info:
        _verify(_sig(), **change)
    assert info.value.code == "bad_signature"  # type: ignore[attr-defined]
    assert info.value.status_code == 401 and not info.value.retryable
    assert isinstance(info.value, IssuerError)


def test_wrong_secret_is_refused() -> None:
    other = sign_request(b"other", method="POST", path="/v1/mint-batches", timestamp=NOW, body=BODY)
    with pytest.raises(SignatureError, match="does not match"):
        _verify(other)


@pytest.mark.parametrize("skew", [301, -301, 86_400])
def test_stale_or_future_timestamp_is_refused_even_if_correctly_signed(skew: int) -> None:
    ts = NOW - skew
    with pytest.raises(SignatureError, match="server clock") as info:
        _verify(_sig(timestamp=ts), timestamp=ts)
    assert info.value.code == "stale_timestamp"  # type: ignore[attr-defined]


def test_tolerance_is_configurable() -> None:
    _verify(_sig(timestamp=NOW - 1000), timestamp=NOW - 1000, tolerance_s=1000)


@pytest.mark.parametrize(
    ("signature", "timestamp", "message"),
    [(None, NOW, "missing X-Signature"), ("", NOW, "missing X-Signature"), ("ab", None, "missing X-Timestamp")],
)
def test_missing_parts_are_reported_as_missing(signature: str | None, timestamp: int | None, message: str) -> None:
    with pytest.raises(SignatureError, match=message) as info:
        _verify(signature, timestamp=timestamp)
    assert info.value.code == "missing_signature"  # type: ignore[attr-defined]


def test_malformed_timestamp_and_non_hex_signature_are_refused_not_crashing() -> None:
    with pytest.raises(SignatureError, match="not an integer"):
        _verify(_sig(), timestamp="yesterday")
    with pytest.raises(SignatureError, match="does not match"):
        _verify("签名" * 32)

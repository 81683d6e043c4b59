"""The issuer contract: canonical JSON, what a mint request refuses, and the published OpenAPI file."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.issuer import (
    CONTRACT_VERSION,
    MAX_ITEMS_PER_BATCH,
    OPENAPI_PATH,
    MintItem,
    MintReceipt,
    MintRequest,
    canonical_json,
    export_openapi,
    metadata_sha256,
)


def item_data(ref: str = "relicflow:item:1", **changes: Any) -> dict[str, Any]:
    metadata = {"藏品名称": "白玉璧", "年代": "战国", "通长_cm": 12.5}
    data = {
        "item_ref": ref,
        "accession_number": "2023.001",
        "name": "白玉璧",
        "image_sha256": hashlib.sha256(b"image").hexdigest(),
        "metadata_uri": "https://museum.example/meta/1.json",
        "metadata_sha256": metadata_sha256(metadata),
        "metadata": metadata,
        "review": {"approved_by": ["r1"], "approved_at": "2026-11-03T09:30:00+08:00", "decision_ids": [3]},
    }
    return data | changes


def request_data(n: int = 2, **changes: Any) -> dict[str, Any]:
    items = [item_data(f"relicflow:item:{i}") for i in range(n)]
    return {"contract_version": CONTRACT_VERSION, "batch_ref": "batch-2026-11-03", "recipient": "treasury",
            "items": items} | changes


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": None, "c": "青铜"}]}) == '{"a":[1,{"c":"青铜","d":null}],"b":1}'.encode()
    assert canonical_json({"t": datetime(2026, 1, 2, tzinfo=UTC)}) == b'{"t":"2026-01-02T00:00:00Z"}'
    with pytest.raises(ValueError):
        canonical_json({"x": math.nan})


def test_a_valid_request_round_trips_and_its_body_bytes_are_canonical() -> None:
    request = MintRequest.model_validate(request_data())
    assert MintRequest.model_validate_json(request.body_bytes()) == request
    assert request.body_bytes() == canonical_json(json.loads(request.body_bytes()))
    assert request.items[0].review.approved_at.utcoffset() is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image_sha256": "ABC"}, "String should match pattern"),
        ({"image_sha256": hashlib.sha256(b"x").hexdigest().upper()}, "String should match pattern"),
        ({"metadata_sha256": hashlib.sha256(b"other").hexdigest()}, "metadata_sha256 is not"),
        ({"name": ""}, "at least 1 character"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
        ({"review": {"approved_by": [], "approved_at": "2026-11-03T09:30:00Z", "decision_ids": [1]}}, "at least 1 item"),
        ({"review": {"approved_by": ["r"], "approved_at": "2026-11-03T09:30:00", "decision_ids": [1]}}, "timezone"),
    ],
)
def test_item_refuses(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MintItem.model_validate(item_data(**change))


def test_request_refuses_duplicates_empty_oversized_unknown_version_and_extras() -> None:
    data = request_data()
    data["items"].append(item_data("relicflow:item:1"))
    with pytest.raises(ValidationError, match="repeated: relicflow:item:1"):
        MintRequest.model_validate(data)
    with pytest.raises(ValidationError, match="at least 1 item"):
        MintRequest.model_validate(request_data(0))
    with pytest.raises(ValidationError, match=f"at most {MAX_ITEMS_PER_BATCH} items"):
        MintRequest.model_validate(request_data(MAX_ITEMS_PER_BATCH + 1))
    with pytest.raises(ValidationError, match="contract_version"):
        MintRequest.model_validate(request_data(contract_version="2025-01"))
    with pytest.raises(ValidationError, match="Extra inputs"):
        MintRequest.model_validate(request_data(priority="high"))
    with pytest.raises(ValidationError, match="batch_ref"):
        MintRequest.model_validate(request_data(batch_ref="a/b"))
    assert len(MintRequest.model_validate(request_data(MAX_ITEMS_PER_BATCH)).items) == MAX_ITEMS_PER_BATCH


def test_receipt_tolerates_fields_an_issuer_adds() -> None:
    receipt = MintReceipt.model_validate(
        {"batch_ref": "b", "status": "minted", "chain": "bsn", "minted_at": "2026-11-03T01:00:00Z",
         "tokens": [{"item_ref": "i", "token_id": "1", "tx_hash": "0x1", "block": 9}], "gas": 0}
    )
    assert receipt.tokens[0].token_id == "1"


def test_committed_openapi_file_equals_a_fresh_export(tmp_path: Path) -> None:
    fresh = tmp_path / "issuer.openapi.json"
    export_openapi(fresh)
    assert OPENAPI_PATH.read_text(encoding="utf-8") == fresh.read_text(encoding="utf-8"), (
        "schemas/issuer.openapi.json is stale: run `.venv/bin/python -m schemas.issuer`"
    )
    document = json.loads(fresh.read_text(encoding="utf-8"))
    assert document["info"]["version"] == CONTRACT_VERSION
    assert set(document["paths"]) == {"/v1/mint-batches", "/v1/mint-batches/{batch_ref}", "/v1/tokens", "/healthz"}
    body = document["paths"]["/v1/mint-batches"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/MintRequest"}
    schemas = document["components"]["schemas"]
    for name in ("MintRequest", "MintItem", "ReviewAttestation", "MintReceipt", "IssuerProblem"):
        assert name in schemas
    assert json.dumps(document).count("#/$defs/") == 0  # every reference resolves inside the document


def test_contract_2026_12_signs_the_idempotency_key_and_filters_tokens() -> None:
    document = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    assert CONTRACT_VERSION == "2027-01" == document["info"]["version"]
    assert "path?query\\nIdempotency-Key\\nsha256_hex(body)" in document["info"]["description"]
    params = {p["name"] for p in document["paths"]["/v1/tokens"]["get"]["parameters"]}
    assert {"item_ref", "batch_ref"} <= params
    # a batch committed under 2026-11 is resent with its exact bytes: the body layout did not change
    old = MintRequest.model_validate(request_data(contract_version="2026-11"))
    assert old.contract_version == "2026-11" and b'"contract_version":"2026-11"' in old.body_bytes()
    assert MintRequest.model_validate(request_data()).contract_version == "2027-01"
    # 2026-12 bodies (no images list) are resent as they were committed
    assert MintRequest.model_validate(request_data(contract_version="2026-12")).items[0].images == []


def test_contract_2027_01_sends_every_photograph_of_the_object() -> None:
    data = request_data()
    first = data["items"][0]["image_sha256"]
    data["items"][0]["images"] = [{"view": "front", "version": 1, "sha256": first},
                                  {"view": "back", "version": 2, "sha256": "b" * 64}]
    request = MintRequest.model_validate(data)
    assert [i.sha256 for i in request.items[0].images] == [first, "b" * 64]
    data["items"][0]["images"] = [{"view": "back", "version": 1, "sha256": "b" * 64}]
    with pytest.raises(ValidationError, match="image_sha256 must be one of the images"):
        MintRequest.model_validate(data)
    data["items"][0]["images"] = [{"view": "front", "version": 1, "sha256": first}] * 2
    with pytest.raises(ValidationError, match="listed twice"):
        MintRequest.model_validate(data)

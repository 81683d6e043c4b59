"""The versioned contract between relicflow and an issuer of digital collections.

Both sides of the wire use these models: :mod:`relicflow.issuer_client` builds and sends a
:class:`MintRequest`, :mod:`relicflow.sandbox_issuer` (the reference implementation) parses it and
answers a :class:`MintReceipt` or an :class:`IssuerProblem`. A breaking change means a new
``CONTRACT_VERSION``; ``issuer.openapi.json`` next to this file is the published form and a test keeps
it equal to a fresh export.

Requests forbid unknown fields (a typo must not silently drop data that was meant to be minted);
responses ignore unknown fields so an issuer can add to them without breaking relicflow.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import to_jsonable_python

# 2026-12: the signature covers the Idempotency-Key; GET /v1/tokens filters by item_ref and batch_ref.
# 2027-01: an item is an object with one or more photographs (views): MintItem.images lists them all.
CONTRACT_VERSION = "2027-01"

MAX_ITEMS_PER_BATCH = 500

_SHA256_HEX = r"^[0-9a-f]{64}$"
# batch_ref travels in URL paths (GET /v1/mint-batches/{batch_ref}): keep it to URL-safe characters.
_BATCH_REF = r"^[A-Za-z0-9._:~-]{1,128}$"

OPENAPI_PATH = Path(__file__).with_name("issuer.openapi.json")


def canonical_json(obj: Any) -> bytes:
    """One byte string per JSON value, so two parties hash the same thing.

    Sorted keys, no insignificant whitespace, UTF-8 with non-ASCII kept as is (Chinese names stay
    readable and byte-stable), NaN/Infinity refused. Pydantic models, datetimes and the like are first
    turned into their JSON form.
    """
    return json.dumps(
        to_jsonable_python(obj),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode("utf-8")


def metadata_sha256(metadata: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical metadata JSON: the value of :attr:`MintItem.metadata_sha256`."""
    return hashlib.sha256(canonical_json(metadata)).hexdigest()


class ReviewAttestation(BaseModel):
    """Who approved the item and which committed catalogue decisions say so."""

    model_config = ConfigDict(extra="forbid")

    approved_by: list[str] = Field(min_length=1, description="Reviewer ids; two for graded relics.")
    approved_at: AwareDatetime = Field(description="When the (last) approval was committed; with a time zone.")
    decision_ids: list[int] = Field(min_length=1, description="Catalogue ids of the approving decisions.")


class MintImage(BaseModel):
    """One photograph of the object, in the version the reviewers approved."""

    model_config = ConfigDict(extra="forbid")

    view: str | None = Field(default=None, max_length=32, description="front, back, left, right, side, top, bottom, "
                                                                      "detail, rubbing, inscription; null when not said.")
    version: int = Field(ge=1, description="1 for the first photograph of this view; a rescan after a send-back is the next.")
    sha256: str = Field(pattern=_SHA256_HEX, description="SHA-256 of the master image (lowercase hex).")


class MintItem(BaseModel):
    """One approved relic (an object, with every photograph of it) to be minted as one token."""

    model_config = ConfigDict(extra="forbid")

    item_ref: str = Field(
        min_length=1, max_length=200, description='relicflow\'s stable item id, e.g. "relicflow:item:42".'
    )
    accession_number: str | None = Field(default=None, max_length=200, description="总登记号, if known.")
    name: str = Field(min_length=1, max_length=500, description="藏品名称.")
    image_sha256: str = Field(pattern=_SHA256_HEX, description="SHA-256 of the object's first master image (front first).")
    images: list[MintImage] = Field(default_factory=list, max_length=100,
                                    description="Every photograph of the object (contract 2027-01; empty in older bodies).")
    metadata_uri: str = Field(min_length=1, max_length=2000, description="Where the metadata JSON is published.")
    metadata_sha256: str = Field(
        pattern=_SHA256_HEX,
        description="SHA-256 of canonical_json(metadata) (like AVATA's uri_hash); checked against metadata.",
    )
    metadata: dict[str, Any] = Field(description="The catalogue record sent along.")
    review: ReviewAttestation

    @model_validator(mode="after")
    def _metadata_hash_matches(self) -> MintItem:
        if metadata_sha256(self.metadata) != self.metadata_sha256:
            raise ValueError("metadata_sha256 is not the SHA-256 of canonical_json(metadata)")
        shas = [image.sha256 for image in self.images]
        if shas and self.image_sha256 not in shas:
            raise ValueError("image_sha256 must be one of the images")
        if len(set(shas)) != len(shas):
            raise ValueError("an image is listed twice")
        return self


class AuditAnchor(BaseModel):
    """The head of the museum's sealed review record when the batch was made: lets the issuer (or an
    auditor holding its copy) show later that the record was not cut back."""

    model_config = ConfigDict(extra="forbid")

    entry_id: int = Field(ge=1, description="Id of the newest audit entry.")
    entry_hash: str = Field(pattern=_SHA256_HEX, description="Its HMAC-SHA256 seal (lowercase hex).")


class MintRequest(BaseModel):
    """Body of ``POST /v1/mint-batches``; sent with an ``Idempotency-Key`` decided before the first try."""

    model_config = ConfigDict(extra="forbid")

    # 2026-11 bodies have the same layout: a batch committed before an upgrade is resent with its exact
    # bytes (its Idempotency-Key's stored answer at the issuer depends on them), only signed the new way.
    contract_version: Literal["2026-11", "2026-12", "2027-01"] = CONTRACT_VERSION
    batch_ref: str = Field(pattern=_BATCH_REF, description="relicflow's batch id; one batch, one receipt.")
    recipient: str = Field(min_length=1, max_length=200, description="Account that receives the tokens.")
    items: list[MintItem] = Field(min_length=1, max_length=MAX_ITEMS_PER_BATCH)
    audit_anchor: AuditAnchor | None = Field(default=None, description="Head of the review record the approvals are in.")

    @model_validator(mode="after")
    def _unique_item_refs(self) -> MintRequest:
        counts = Counter(item.item_ref for item in self.items)
        dupes = sorted(ref for ref, n in counts.items() if n > 1)
        if dupes:
            raise ValueError(f"item_ref must be unique within a batch; repeated: {', '.join(dupes)}")
        return self

    def body_bytes(self) -> bytes:
        """The exact bytes to send and sign: canonical JSON, so a retry sends the same bytes."""
        return canonical_json(self.model_dump(mode="json"))


class MintedToken(BaseModel):
    item_ref: str
    token_id: str = Field(description="Assigned by the chain; read back from the receipt.")
    tx_hash: str


class MintReceipt(BaseModel):
    """What the issuer answers once a batch is on chain; kept by relicflow as evidence."""

    batch_ref: str
    status: Literal["minted"]
    chain: str
    tokens: list[MintedToken]
    minted_at: AwareDatetime


class LedgerToken(BaseModel):
    """One token as listed by ``GET /v1/tokens`` (reconciliation)."""

    item_ref: str
    token_id: str
    batch_ref: str
    tx_hash: str
    content_sha256: list[str] = Field(default_factory=list, description="SHA-256 of each photograph the token stands for (2027-01).")


class TokenList(BaseModel):
    tokens: list[LedgerToken]


class IssuerProblem(BaseModel):
    """RFC 9457 problem details; ``code`` is the stable machine-readable reason.

    Codes used by the sandbox: ``unauthorized``, ``missing_signature``, ``bad_signature``,
    ``stale_timestamp``, ``missing_idempotency_key``, ``invalid_idempotency_key``, ``invalid_request``,
    ``idempotency_key_reused``, ``request_in_flight``, ``already_minted``, ``batch_exists``,
    ``payload_too_large``, ``unavailable``, ``not_found``, ``invalid_query``.
    """

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    code: str
    item_refs: list[str] | None = Field(default=None, description="Items the problem is about (already_minted).")


def export_openapi(path: Path) -> None:
    """Write the sandbox issuer's OpenAPI document (the published contract) to ``path``."""
    from relicflow.sandbox_issuer import create_sandbox_app  # the app imports this module

    with tempfile.TemporaryDirectory() as tmp:
        app = create_sandbox_app(ledger_path=Path(tmp) / "ledger.sqlite3", api_key="x", secret=b"x")
        document = app.openapi()
    Path(path).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":  # python -m schemas.issuer  — refresh the committed OpenAPI file
    export_openapi(OPENAPI_PATH)

"""The mint flow against the sandbox issuer over real HTTP: exactly one token per approved item."""

from __future__ import annotations


import pytest
from PIL import Image

from flows.ingest import ingest_flow
from flows.mint import mint_flow, prepare_batch
from relicflow.catalogue import Catalogue
from relicflow.issuer_client import IssuerClient
from relicflow.passwords import hash_password
from relicflow.background_server import serve_in_background
from relicflow.sandbox_issuer import create_sandbox_app
from relicflow.settings import Settings
from relicflow.storage import open_store
from schemas.issuer import MintRequest

pytestmark = pytest.mark.usefixtures("prefect_server")


def start_sandbox(settings: Settings, **kwargs: object):  # noqa: ANN201 - a context manager yielding the URL
    return serve_in_background(create_sandbox_app(
        ledger_path=settings.sandbox_ledger_path, api_key=settings.issuer_api_key.get_secret_value(),
        secret=settings.issuer_secret.get_secret_value().encode(), **kwargs))  # type: ignore[arg-type]


def write_sheet(settings: Settings, rows: list[tuple[str, str, str, str]]) -> None:
    """The accession sheet in the inbox: (accession number, name, grade, file name) per row."""
    lines = ["总登记号,藏品名称,类别,级别,文件名"] + [f"{n},{name},铜器,{grade},{file}" for n, name, grade, file in rows]
    (settings.inbox / "accession_sheet.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def ingest_objects(settings: Settings, colours: list[str]) -> None:
    """One small photograph per colour (obj-0.jpg …), each with its accession-sheet row (三级), ingested."""
    settings.inbox.mkdir(parents=True)
    for i, colour in enumerate(colours):
        img = Image.new("RGB", (400, 300), colour)
        img.paste(Image.new("RGB", (60 + 30 * i, 40), "black"), (20 * i, 10 * i))
        img.save(settings.inbox / f"obj-{i}.jpg", quality=90)
    write_sheet(settings, [(f"MT-{i}", f"铜镜 {i}", "三级", f"obj-{i}.jpg") for i in range(len(colours))])
    ingest_flow(settings=settings, start_gate=False)


@pytest.fixture
def reviewed(settings: Settings) -> tuple[Settings, Catalogue, list[int], list[int]]:
    """Four ingested items: three approved, one rejected."""
    ingest_objects(settings, ["red", "green", "blue", "yellow"])
    catalogue = Catalogue.from_settings(settings)
    reviewer = catalogue.add_user("li", hash_password("pw"), "reviewer")
    ids = [item.id for item in catalogue.items_awaiting_review()]
    for item_id in ids[:3]:
        catalogue.record_decision(item_id, reviewer_id=reviewer, decision="approve")
    catalogue.record_decision(ids[3], reviewer_id=reviewer, decision="reject", reason="碎片照片，非完整器物")
    return settings, catalogue, ids[:3], ids[3:]


def ledger_tokens(url: str, settings: Settings) -> dict[str, str]:
    with IssuerClient(url, api_key=settings.issuer_api_key.get_secret_value(), secret=settings.issuer_secret.get_secret_value().encode()) as c:
        return {t.item_ref: t.token_id for t in c.list_tokens()}


def test_mint_sends_only_approved_items_once_and_a_second_run_sends_nothing(reviewed) -> None:  # noqa: ANN001
    settings, catalogue, approved, rejected = reviewed
    with start_sandbox(settings, fail_first=2) as url:  # two 503s first: the client retries with backoff
        s = settings.model_copy(update={"issuer_url": url})
        result = mint_flow(settings=s)
        assert result["minted"] == 3 and result["failed"] == []
        tokens = ledger_tokens(url, s)
        assert sorted(tokens) == sorted(f"relicflow:item:{i}" for i in approved)
        assert all(catalogue.item_status(i).value == "minted" for i in approved)
        assert catalogue.item_status(rejected[0]).value == "rejected"
        again = mint_flow(settings=s)
        assert again["minted"] == 0 and again["batches"] == []
        assert ledger_tokens(url, s) == tokens
    receipts = catalogue.receipts()
    assert sorted(r.item_id for r in receipts) == sorted(approved)
    assert {r.token_id for r in receipts} == set(tokens.values())


def test_crash_after_commit_before_send_resends_same_key(reviewed) -> None:  # noqa: ANN001
    settings, catalogue, approved, _ = reviewed
    batch_id = prepare_batch(catalogue, open_store(settings), item_ids=approved, recipient="museum")  # then "crash"
    assert all(catalogue.item_status(i).value == "batched" for i in approved)
    with start_sandbox(settings) as url:
        s = settings.model_copy(update={"issuer_url": url})
        result = mint_flow(settings=s)
        assert result["minted"] == 3 and len(result["batches"]) == 1
        assert catalogue.mint_batch(batch_id).status == "minted"
        assert len(ledger_tokens(url, s)) == 3


def test_crash_after_send_before_receipt_gets_the_issuers_answer_again(reviewed) -> None:  # noqa: ANN001
    settings, catalogue, approved, _ = reviewed
    batch_id = prepare_batch(catalogue, open_store(settings), item_ids=approved, recipient="museum")
    batch = catalogue.mint_batch(batch_id)
    with start_sandbox(settings) as url:
        s = settings.model_copy(update={"issuer_url": url})
        with IssuerClient.from_settings(s) as client:  # the issuer minted, but we "crashed" before storing it
            first = client.mint_batch(MintRequest.model_validate(batch.request_body), idempotency_key=batch.idempotency_key)
        result = mint_flow(settings=s)
        assert result["minted"] == 3
        assert {r.token_id for r in catalogue.receipts()} == {t.token_id for t in first.tokens}
        assert len(ledger_tokens(url, s)) == 3


def test_issuer_down_leaves_batch_open_and_next_run_completes_it(reviewed) -> None:  # noqa: ANN001
    settings, catalogue, approved, _ = reviewed
    down = settings.model_copy(update={"issuer_url": "http://127.0.0.1:9", "issuer_max_attempts": 2})
    result = mint_flow(settings=down)
    assert result["minted"] == 0 and len(result["failed"]) == 1
    [batch] = catalogue.open_mint_batches()
    assert batch.status == "failed" and batch.last_error
    with start_sandbox(settings) as url:
        result = mint_flow(settings=settings.model_copy(update={"issuer_url": url}))
        assert result["minted"] == 3
        assert catalogue.mint_batch(batch.id).status == "minted" and catalogue.open_mint_batches() == []


def test_nothing_unapproved_is_ever_batched(reviewed) -> None:  # noqa: ANN001
    settings, catalogue, approved, rejected = reviewed
    batch_id = prepare_batch(catalogue, open_store(settings), item_ids=approved + rejected, recipient="museum")
    assert batch_id is not None
    batch = catalogue.mint_batch(batch_id)
    assert [link.item_id for link in batch.item_links] == sorted(approved)
    assert sorted(item["item_ref"] for item in batch.request_body["items"]) == sorted(f"relicflow:item:{i}" for i in approved)
    assert catalogue.item_status(rejected[0]).value == "rejected" and catalogue.item(rejected[0]).mint_hold_code is None

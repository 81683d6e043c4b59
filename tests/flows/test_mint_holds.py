"""Someone bends the record with SQL; the real mint flow, against the sandbox issuer over HTTP, mints
only the items whose record still holds, and holds each bent one with the right code."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from PIL import Image
from sqlalchemy import text

from flows.ingest import ingest_flow
from flows.mint import build_item, mint_flow
from relicflow.background_server import serve_in_background
from relicflow.catalogue import Catalogue
from relicflow.issuer_client import IssuerClient
from relicflow.passwords import hash_password
from relicflow.sandbox_issuer import create_sandbox_app
from relicflow.settings import Settings
from relicflow.storage import open_store
from schemas.issuer import MintRequest

pytestmark = pytest.mark.usefixtures("prefect_server")

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "gray", "brown", "pink", "cyan"]


@dataclass
class Museum:
    settings: Settings
    catalogue: Catalogue
    ids: dict[str, int]  # file stem -> item id
    reviewers: tuple[int, int]

    def sql(self, statement: str, **params: object) -> None:
        with self.catalogue.engine.begin() as conn:
            conn.execute(text(statement), params)

    def approve(self, name: str, *reviewers: int) -> None:
        for reviewer in reviewers:
            self.catalogue.record_decision(self.ids[name], reviewer_id=reviewer, decision="approve")

    def decision_ids(self, name: str) -> list[int]:
        return [d.id for d in self.catalogue.item(self.ids[name]).decisions]

    def holds(self, action: str = "mint:hold") -> list[tuple[int | None, str]]:
        return [(e.item_id, e.details.get("code", "")) for e in self.catalogue.audit_entries() if e.action == action]


def write_scans(settings: Settings, names: list[str]) -> None:
    settings.inbox.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        img = Image.new("RGB", (400, 300), COLOURS[i])
        img.paste(Image.new("RGB", (30 + 25 * i, 40), "black"), (15 * i, 12 * i))
        img.save(settings.inbox / f"{name}.jpg", quality=90)


def write_sheet(settings: Settings, rows: list[tuple[str, str, str, str]]) -> None:
    lines = ["总登记号,藏品名称,类别,级别,文件名"] + [",".join(row) for row in rows]
    (settings.inbox / "accession_sheet.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def museum(settings: Settings) -> Iterator[Museum]:
    """Ten scans ingested: nine with a sheet row (grades as museums write them), one with none."""
    graded = {"good-a": "三级", "good-b": "一般", "reviewer-swapped": "一级", "one-of-two": "一級", "row-deleted": "二级",
              "no-approval": "三级", "withdrawn": "国家一级文物", "fixed-later": "一级品", "odd-grade": "一级待复核"}
    write_scans(settings, [*graded, "no-sheet-row"])
    write_sheet(settings, [(f"HB-{i}", f"藏品{i}", "铜器", grade, f"{name}.jpg") for i, (name, grade) in enumerate(graded.items())])
    ingest_flow(settings=settings, start_gate=False)
    catalogue = Catalogue.from_settings(settings)
    ids = {item.files[0].file_name.removesuffix(".jpg"): item.id for item in catalogue.items()}
    li = catalogue.add_user("li", hash_password("pw"), "reviewer")
    wang = catalogue.add_user("wang", hash_password("pw"), "senior_reviewer")  # graded relics: the second approval
    yield Museum(settings, catalogue, ids, (li, wang))
    catalogue.dispose()


def ledger(url: str, settings: Settings) -> set[str]:
    with IssuerClient(url, api_key=settings.issuer_api_key.get_secret_value(),
                      secret=settings.issuer_secret.get_secret_value().encode()) as client:
        return {t.item_ref for t in client.list_tokens()}


def start_sandbox(settings: Settings):  # noqa: ANN201 - a context manager yielding the URL
    return serve_in_background(create_sandbox_app(
        ledger_path=settings.sandbox_ledger_path, api_key=settings.issuer_api_key.get_secret_value(),
        secret=settings.issuer_secret.get_secret_value().encode()))


def test_graded_spellings_need_two_reviewers_through_ingest(museum: Museum) -> None:
    required = {name: museum.catalogue.item(item_id).required_approvals for name, item_id in museum.ids.items()}
    for name in ("reviewer-swapped", "one-of-two", "withdrawn", "fixed-later"):  # 一级, 一級, 国家一级文物, 一级品
        assert required[name] == 2, name
    assert required["good-a"] == required["good-b"] == required["row-deleted"] == 1
    assert museum.catalogue.item(museum.ids["one-of-two"]).grade == "一級"  # the sheet's text is kept as written
    # a grade nobody foresaw is kept as written, counts as no grade, and the reviewer is told
    odd = museum.catalogue.item(museum.ids["odd-grade"])
    assert odd.grade == "一级待复核" and odd.required_approvals == 1
    [note] = [w for w in odd.warnings if w.code == "grade_unrecognised"]
    assert "一级待复核" in note.message_en and "一级待复核" in note.message_zh
    assert not any(w.code == "grade_unrecognised" for name in ("good-a", "one-of-two", "withdrawn")
                   for w in museum.catalogue.item(museum.ids[name]).warnings)
    li, _ = museum.reviewers
    museum.approve("one-of-two", li)
    assert museum.catalogue.item_status(museum.ids["one-of-two"]).value == "awaiting_review"


def test_bent_records_are_held_and_the_good_items_are_minted(museum: Museum) -> None:
    li, wang = museum.reviewers
    m, ids = museum, museum.ids
    m.approve("good-a", li)
    m.approve("good-b", wang)
    # the second reviewer's approval is rewritten as the first reviewer's: li, li would be attested
    m.approve("reviewer-swapped", li, wang)
    m.sql("UPDATE review_decisions SET reviewer_id = :li WHERE id = :id", li=li, id=m.decision_ids("reviewer-swapped")[1])
    # a 一級 item approved once, flipped to approved by hand
    m.approve("one-of-two", li)
    m.sql("UPDATE items SET status = 'approved' WHERE id = :id", id=ids["one-of-two"])
    # the approval row is deleted; its audit entry remains
    m.approve("row-deleted", li)
    m.sql("DELETE FROM review_decisions WHERE item_id = :id", id=ids["row-deleted"])
    # never reviewed at all, flipped to approved
    m.sql("UPDATE items SET status = 'approved' WHERE id = :id", id=ids["no-approval"])
    # approved by one, rejected by the other, flipped back to approved
    m.approve("withdrawn", li)
    m.catalogue.record_decision(ids["withdrawn"], reviewer_id=wang, decision="reject", reason="与登记信息不符")
    m.sql("UPDATE items SET status = 'approved' WHERE id = :id", id=ids["withdrawn"])
    # no accession-sheet row: a reviewer may approve it, but it has no catalogue record to mint
    m.approve("no-sheet-row", li)
    # the fixed-later item is left for the second test run: approved by one, flipped
    m.approve("fixed-later", li)
    m.sql("UPDATE items SET status = 'approved' WHERE id = :id", id=ids["fixed-later"])

    expected = {"reviewer-swapped": "decision_record_mismatch", "one-of-two": "approvals_insufficient",
                "row-deleted": "decision_record_mismatch", "no-approval": "approvals_missing",
                "withdrawn": "approval_withdrawn", "no-sheet-row": "no_catalogue_record", "fixed-later": "approvals_insufficient"}
    with start_sandbox(m.settings) as url:
        s = m.settings.model_copy(update={"issuer_url": url})
        result = mint_flow(settings=s)
        assert result["minted"] == 2 and result["failed"] == []
        assert ledger(url, s) == {f"relicflow:item:{ids['good-a']}", f"relicflow:item:{ids['good-b']}"}
        assert result["held"] == {ids[name]: code for name, code in expected.items()}
        for name, code in expected.items():
            item = m.catalogue.item(ids[name])
            assert item.status == "approved" and item.mint_hold_code == code, name
            assert item.mint_hold_message_en and item.mint_hold_message_zh, name
        assert sorted(m.holds()) == sorted((ids[name], code) for name, code in expected.items())
        [batch] = m.catalogue.mint_batches()
        assert sorted(i["item_ref"] for i in batch.request_body["items"]) == sorted(
            f"relicflow:item:{ids[n]}" for n in ("good-a", "good-b"))

        # a second run mints nothing, and a hold already recorded is not audited again
        again = mint_flow(settings=s)
        assert again["minted"] == 0 and again["held"] == result["held"]
        assert len(m.holds()) == len(expected)

        # a record put right lets its item go: the swapped reviewer is restored, a second reviewer approves
        m.sql("UPDATE review_decisions SET reviewer_id = :wang WHERE id = :id", wang=wang, id=m.decision_ids("reviewer-swapped")[1])
        m.sql("UPDATE items SET status = 'awaiting_review' WHERE id = :id", id=ids["fixed-later"])
        m.approve("fixed-later", wang)
        third = mint_flow(settings=s)
        assert third["minted"] == 2
        assert ledger(url, s) >= {f"relicflow:item:{ids['reviewer-swapped']}", f"relicflow:item:{ids['fixed-later']}"}
        assert len(ledger(url, s)) == 4
    swapped = m.catalogue.item(ids["reviewer-swapped"])
    assert swapped.status == "minted" and swapped.mint_hold_code is None
    released = [e for e in m.catalogue.audit_entries(item_id=ids["reviewer-swapped"]) if e.action == "status:batched"]
    assert released[0].details["hold_released"] == "decision_record_mismatch"
    # the issuer was told who approved from the audit log: two distinct reviewers
    batch = m.catalogue.mint_batches()[-1]
    attested = {i["item_ref"]: i["review"]["approved_by"] for i in batch.request_body["items"]}
    assert attested[f"relicflow:item:{ids['reviewer-swapped']}"] == ["li", "wang"]
    assert attested[f"relicflow:item:{ids['fixed-later']}"] == ["li", "wang"]


def test_an_item_bent_after_its_body_was_built_is_left_out_of_the_batch(museum: Museum) -> None:
    li, wang = museum.reviewers
    m, ids = museum, museum.ids
    m.approve("good-a", li)
    m.approve("good-b", li)
    m.approve("reviewer-swapped", li, wang)
    assessment = m.catalogue.assess_for_mint()
    assert [i for i, _ in assessment.eligible] == sorted(ids[n] for n in ("good-a", "good-b", "reviewer-swapped"))
    store = open_store(m.settings)
    built = [build_item(m.catalogue, store, item_id, eligible) for item_id, eligible in assessment.eligible]
    # between building the bodies and the batching transaction: one approval row is deleted, one
    # item is batched by another run meanwhile (here: flipped away from approved)
    m.sql("DELETE FROM review_decisions WHERE item_id = :id", id=ids["good-b"])
    m.sql("UPDATE items SET status = 'rejected' WHERE id = :id", id=ids["reviewer-swapped"])
    outcome = m.catalogue.batch_for_mint(built, batch_ref="rf-recheck", recipient="museum", idempotency_key="key-recheck")
    assert outcome.batched == [ids["good-a"]] and outcome.skipped == [ids["reviewer-swapped"]]
    assert [(i, h.code) for i, h in outcome.held] == [(ids["good-b"], "decision_record_mismatch")]
    batch = m.catalogue.mint_batch(outcome.batch_id)
    assert [i["item_ref"] for i in batch.request_body["items"]] == [f"relicflow:item:{ids['good-a']}"]
    assert [link.item_id for link in batch.item_links] == [ids["good-a"]]
    assert batch.request_sha256 == hashlib.sha256(MintRequest.model_validate(batch.request_body).body_bytes()).hexdigest()
    assert m.catalogue.item(ids["good-b"]).status == "approved" and m.catalogue.item(ids["good-b"]).mint_hold_code == "decision_record_mismatch"

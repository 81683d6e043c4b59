"""A batch from the inbox to the issuer: ingest, review through the HTTP form, mint over real HTTP."""

from __future__ import annotations

import time

import pytest
from reviewer_browser import ReviewerBrowser

from flows.ingest import ingest_flow
from flows.mint import mint_flow
from relicflow.catalogue import Catalogue
from relicflow.issuer_client import IssuerClient
from relicflow.passwords import hash_password
from relicflow.samples.generate import ORPHAN_ACCESSION, write_demo_inbox
from relicflow.background_server import serve_in_background
from relicflow.sandbox_issuer import create_sandbox_app
from relicflow.settings import Settings
from relicflow.storage import open_store
from review_ui.app import create_review_app

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def test_inbox_to_issuer(settings: Settings) -> None:
    write_demo_inbox(settings.inbox)
    summary = ingest_flow(settings=settings, start_gate=False)
    assert summary["awaiting_review"] >= 4 and summary["quarantined"] >= 4 and summary["errors"] == 0
    # only the sheet row with no file at all is reported; rows of quarantined files are matched
    assert summary["unmatched_sheet_rows"] == [ORPHAN_ACCESSION]
    quarantined = Catalogue.from_settings(settings).items(status="quarantined")
    assert all(i.accession_number for i in quarantined)  # staff see which relic a broken file was for

    catalogue = Catalogue.from_settings(settings)
    catalogue.add_user("wang", hash_password("wang-pw-123456"), "reviewer")
    catalogue.add_user("zhao", hash_password("zhao-pw-123456"), "senior_reviewer")  # gives graded relics their second approval
    decided_runs: list[int] = []
    app = create_review_app(settings, catalogue, open_store(settings), on_batch_decided=decided_runs.append)

    with serve_in_background(app) as review_url:
        wang = ReviewerBrowser(review_url)
        wang.log_in("wang", "wang-pw-123456")
        queue = wang.queue()
        assert sorted(queue) == sorted(i.id for i in catalogue.items_awaiting_review())
        rejected = queue[0]
        # a POST without the CSRF token is refused and decides nothing
        assert wang.http.post(f"/items/{rejected}/decision", data={"decision": "approve"}).status_code == 403
        assert wang.decide(rejected, "reject", "").status_code == 400  # a rejection needs a reason
        assert wang.decide(rejected, "reject", "图像与登记信息不符").status_code == 303
        for item_id in queue[1:]:
            assert wang.decide(item_id, "approve").status_code == 303
        graded = [i.id for i in catalogue.items_awaiting_review()]  # 一级 relics wait for a second reviewer
        assert graded and all(catalogue.item(i).required_approvals == 2 for i in graded)
        assert decided_runs == []
        zhao = ReviewerBrowser(review_url)
        zhao.log_in("zhao", "zhao-pw-123456")
        for item_id in graded:
            assert zhao.decide(item_id, "approve").status_code == 303
        deadline = time.monotonic() + 10  # the hook runs after the response has been sent
        while not decided_runs and time.monotonic() < deadline:
            time.sleep(0.05)
        assert decided_runs == [summary["ingest_run_id"]]
        wang.close()
        zhao.close()

    approved = sorted(i.id for i in catalogue.approved_items())
    assert approved == sorted(set(queue) - {rejected})
    with serve_in_background(create_sandbox_app(
            ledger_path=settings.sandbox_ledger_path, api_key=settings.issuer_api_key.get_secret_value(),
            secret=settings.issuer_secret.get_secret_value().encode(), fail_first=1)) as issuer_url:
        s = settings.model_copy(update={"issuer_url": issuer_url})
        first = mint_flow(settings=s)
        assert first["minted"] == len(approved)
        with IssuerClient.from_settings(s) as client:
            tokens = client.list_tokens()
        assert sorted(t.item_ref for t in tokens) == sorted(f"relicflow:item:{i}" for i in approved)
        assert f"relicflow:item:{rejected}" not in {t.item_ref for t in tokens}
        second = mint_flow(settings=s)
        assert second["minted"] == 0 and second["batches"] == []
        with IssuerClient.from_settings(s) as client:
            assert client.list_tokens() == tokens
    assert catalogue.verify_audit_chain() is None
    actions = [e.action for e in catalogue.audit_entries(item_id=rejected)]
    assert "review:reject" in actions and "status:rejected" in actions

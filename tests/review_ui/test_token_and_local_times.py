"""The item page says where an item stands with the issuer (batch, token id, chain), and every page shows
times in the installation's time zone with the zone written out."""

from __future__ import annotations

import re
from collections.abc import Callable

from markupsafe import escape
from review_world import ReviewWorld
from starlette.testclient import TestClient
from test_fixity_page import seed as seed_fixity

from relicflow.catalogue.models import AuditEntry, MintBatch
from relicflow.i18n import t
from relicflow.local_time import format_local

SignedIn = Callable[[str], TestClient]
UTC_STYLE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\b(?![+-])")  # how times were shown before: bare UTC


def approved_item(world: ReviewWorld) -> int:
    item_id = world.add_item(world.new_run(), accession="MB-9001")
    world.catalogue.record_decision(item_id, reviewer_id=world.user_ids["alice"], decision="approve")
    return item_id


def test_the_item_page_shows_the_batch_then_the_token_id_chain_and_transaction(world: ReviewWorld, signed_in: SignedIn) -> None:
    item_id = approved_item(world)
    client = signed_in("alice")
    assert t("web.token.title", "en") not in client.get(f"/items/{item_id}?lang=en").text  # not batched: no panel

    batch_id = world.catalogue.create_mint_batch(item_ids=[item_id], batch_ref="rf-20261122-0001", idempotency_key="key-1",
                                                 request_body={"batch_ref": "rf-20261122-0001"}, request_sha256="0" * 64)
    page = client.get(f"/items/{item_id}?lang=en").text
    assert t("web.token.title", "en") in page and "rf-20261122-0001" in page
    assert str(escape(t("web.token.not_yet", "en"))) in page and t("web.token.batch_status.pending", "en") in page

    world.catalogue.record_mint_receipt(batch_id, chain="bsn-wenchang", raw={},
                                        tokens=[(item_id, "ddc-721-000042", "0x5f3c9a")])
    page = client.get(f"/items/{item_id}?lang=zh-CN").text
    assert '<code class="token-id">ddc-721-000042</code>' in page
    assert '<dd class="token-chain">bsn-wenchang</dd>' in page and "0x5f3c9a" in page
    assert "rf-20261122-0001" in page and t("web.token.batch_status.minted", "zh-CN") in page
    with world.catalogue.session() as s:
        sent_at = s.get_one(MintBatch, batch_id).sent_at
    assert format_local(sent_at, "Asia/Shanghai") in page


def test_item_history_shows_decision_times_in_the_installation_zone(world: ReviewWorld, signed_in: SignedIn) -> None:
    item_id = approved_item(world)
    decided_at = world.catalogue.item(item_id).decisions[0].decided_at  # type: ignore[union-attr]
    page = signed_in("alice").get(f"/items/{item_id}").text
    shanghai = format_local(decided_at, "Asia/Shanghai")
    assert shanghai.endswith("UTC+08:00") and f'<td class="nowrap">{shanghai}</td>' in page
    assert decided_at.strftime("%Y-%m-%d %H:%M") + "<" not in page  # not the bare UTC time any more

    world.settings = world.settings.model_copy(update={"time_zone": "America/New_York"})  # the setting decides
    page = signed_in("alice").get(f"/items/{item_id}").text
    assert f'<td class="nowrap">{format_local(decided_at, "America/New_York")}</td>' in page
    assert "UTC-05:00" in page or "UTC-04:00" in page


def test_quarantine_and_fixity_pages_show_local_times_with_the_zone(world: ReviewWorld, signed_in: SignedIn) -> None:
    run = world.new_run()
    quarantined = world.add_quarantined(run)
    sent_back = world.add_item(run)
    world.catalogue.record_decision(sent_back, reviewer_id=world.user_ids["alice"], decision="send_back", reason="请补拍")
    world.catalogue.finish_ingest_run(run, {"skipped_files": [], "sheet_problems": []})
    seed_fixity(world)
    admin = signed_in("adam")

    page = admin.get("/quarantine").text
    for item_id in (quarantined, sent_back):
        updated_at = world.catalogue.item(item_id).updated_at  # type: ignore[union-attr]
        assert f'<td class="nowrap">{format_local(updated_at, "Asia/Shanghai")}</td>' in page
    finished_at = world.catalogue.ingest_run(run).finished_at  # type: ignore[union-attr]
    assert t("web.last_run.title", "zh-CN", id=run, when=format_local(finished_at, "Asia/Shanghai")) in page
    assert not UTC_STYLE.search(page)

    page = admin.get("/admin/fixity?lang=en").text
    last_run = world.catalogue.audit_entries_of("fixity:run")[-1]
    assert isinstance(last_run, AuditEntry)
    assert f"Last run: {format_local(last_run.at, 'Asia/Shanghai')}," in page
    assert "UTC+08:00</td>" in page and not UTC_STYLE.search(page)

"""The send-back round trip in a real Chromium: a reviewer sees both views of an object, sends it back
with a note, the studio's rescan arrives through the real ingest flow, and the reviewer sees the note,
version 1 beside version 2 and what changed, then approves. Screenshots go to test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flows.ingest import ingest_flow
from relicflow.background_server import serve_in_background
from relicflow.catalogue import Catalogue, ItemStatus
from relicflow.passwords import hash_password
from relicflow.settings import Settings
from relicflow.storage import open_store
from review_ui.app import create_review_app
from tests.review_ui.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.usefixtures("prefect_server"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"),
]


def photo(seed: int, path: Path) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)).resize((640, 480), Image.Resampling.BICUBIC).save(path)


def test_send_back_and_rescan_seen_side_by_side_in_a_real_browser(settings: Settings, artifacts: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    settings.inbox.mkdir(parents=True)
    photo(1, settings.inbox / "QT-8_正面.jpg")
    photo(2, settings.inbox / "QT-8_背面.jpg")
    (settings.inbox / "accession_sheet.csv").write_text("总登记号,藏品名称,级别\nQT-8,青铜爵,三级\n", encoding="utf-8")
    ingest_flow(settings=settings, start_gate=False)
    catalogue = Catalogue.from_settings(settings)
    catalogue.add_user("wang", hash_password("wang-pw-123456"), "reviewer")
    item_id = catalogue.items_awaiting_review()[0].id

    problems: list[str] = []
    with serve_in_background(create_review_app(settings, catalogue, open_store(settings))) as base_url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 1000}).new_page()
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.goto(f"{base_url}/login")
            page.fill("#username", "wang")
            page.fill("#password", "wang-pw-123456")
            page.click("form[action='/login'] button[type=submit]")
            expect(page.locator(".badge-views")).to_contain_text("2 个视图")
            page.goto(f"{base_url}/items/{item_id}")
            expect(page.locator("figure.view")).to_have_count(2)
            expect(page.locator("figure.view .view-name")).to_have_text(["正面", "背面"])
            assert page.locator("figure.view img.access-image").evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
            page.screenshot(path=str(artifacts / "1-object-two-views.png"), full_page=True)
            page.fill("#send-back-reason", "背面反光严重，请重拍背面")
            page.click(".decide-send-back button[type=submit]")
            if page.locator("form.confirm-decision").count():  # the confirmation step, where the app asks for one
                page.screenshot(path=str(artifacts / "2-confirm-send-back.png"), full_page=True)
                page.click("form.confirm-decision button[type=submit]")
            expect(page.locator(".flash")).to_contain_text(f"#{item_id}")
            assert catalogue.item_status(item_id) is ItemStatus.sent_back

            (settings.inbox / "QT-8_背面.jpg").unlink()
            photo(3, settings.inbox / "QT-8_背面.jpg")  # the studio's rescan, same file name
            ingest_flow(settings=settings, start_gate=False)
            assert catalogue.item_status(item_id) is ItemStatus.awaiting_review

            page.goto(f"{base_url}/items/{item_id}")
            expect(page.locator(".send-back-note")).to_contain_text("背面反光严重，请重拍背面")
            rescanned = page.locator("figure.view-rescanned")
            expect(rescanned).to_have_count(1)
            expect(rescanned.locator(".version-old .pill")).to_contain_text("第 1 版")
            expect(rescanned.locator(".version-new .pill")).to_contain_text("第 2 版")
            assert rescanned.locator(".version-old img").evaluate("img => img.complete && img.naturalWidth > 0")
            expect(rescanned.locator(".what-changed")).to_contain_text("内容哈希")
            page.screenshot(path=str(artifacts / "3-rescan-beside-version-1.png"), full_page=True)
            page.click(".decide-approve button[type=submit]")
            expect(page.locator(".flash")).to_contain_text(f"#{item_id}")
            page.screenshot(path=str(artifacts / "4-after-approval.png"), full_page=True)
        finally:
            browser.close()

    assert catalogue.item_status(item_id) is ItemStatus.approved
    approval = [d for d in catalogue.item(item_id).decisions if d.decision == "approve"][0]
    assert [i["version"] for i in approval.seen["images"]] == [1, 2]  # the approval names version 2 of the back
    assert problems == []
    assert sorted(p.name for p in artifacts.glob("*.png"))[-1] == "4-after-approval.png"

"""The review form in a real Chromium (Debian's, driven by Playwright) against the app served by uvicorn:
sign in, open an item, reject one with a reason (through its confirmation page), approve another, and check the catalogue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from review_world import PASSWORD, ReviewWorld

from relicflow.background_server import serve_in_background
from relicflow.catalogue import ItemStatus
from relicflow.catalogue.ingested import WarningNote

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"),
]


@pytest.fixture
def base_url(world: ReviewWorld) -> Iterator[str]:
    with serve_in_background(world.app()) as url:
        yield url


def test_reviewer_rejects_and_approves_in_a_real_browser(world: ReviewWorld, base_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    run = world.new_run()
    first = world.add_item(run, title="青花缠枝莲纹梅瓶", accession="MB-0001",
                           warnings=[WarningNote(code="soft_focus", message_en="The image is soft.", message_zh="图像不够清晰。")])
    second = world.add_item(run, title="青铜饕餮纹鼎", accession="MB-0002", duplicate_of=[first])

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}).new_page()
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)  # e.g. CSP violations
            page.on("pageerror", lambda exc: problems.append(str(exc)))

            page.goto(f"{base_url}/")
            expect(page).to_have_url(f"{base_url}/login?next=/")
            page.fill("#username", "alice")
            page.fill("#password", PASSWORD)
            page.click("form[action='/login'] button[type=submit]")
            expect(page.locator("h1")).to_contain_text("待审藏品")
            thumbs = page.locator("img.thumb")
            expect(thumbs).to_have_count(2)
            # lazy thumbnails load after the page's load event: wait for them to be decoded, whatever the machine's pace
            page.wait_for_function("() => [...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0)")

            page.click(f"a.btn[href='/items/{first}']")
            expect(page.locator("h1")).to_contain_text("MB-0001")
            expect(page.locator(".warnings")).to_contain_text("图像不够清晰。")
            page.wait_for_load_state("load")
            assert page.locator("img.access-image").evaluate("img => img.complete && img.naturalWidth > 0")
            page.fill("#reject-reason", "画面模糊，且纹饰细节无法辨认")
            page.click(".decide-reject button[type=submit]")

            # not yet recorded: the confirmation page repeats the item, the decision and the reason as typed
            expect(page.locator("h1")).to_contain_text("确认驳回")
            expect(page.locator(".confirm-item")).to_contain_text("MB-0001")
            expect(page.locator(".confirm-reason")).to_contain_text("画面模糊，且纹饰细节无法辨认")
            assert world.catalogue.item_status(first) is ItemStatus.awaiting_review
            page.screenshot(path=str(tmp_path / "confirm-reject.png"), full_page=True)
            page.click("button.confirm-yes")

            expect(page).to_have_url(f"{base_url}/items/{second}?done=rejected&item={first}")
            expect(page.locator(".flash")).to_contain_text(f"藏品 #{first} 已驳回")
            expect(page.locator(".duplicates")).to_contain_text("MB-0001")
            page.screenshot(path=str(tmp_path / "item-page.png"), full_page=True)
            page.click(".decide-approve button[type=submit]")

            expect(page).to_have_url(f"{base_url}/?done=approved&item={second}")
            expect(page.locator(".empty")).to_contain_text("目前没有待审藏品")
            page.screenshot(path=str(tmp_path / "queue-after.png"), full_page=True)
        finally:
            browser.close()

    assert world.catalogue.item_status(first) is ItemStatus.rejected
    assert world.catalogue.item_status(second) is ItemStatus.approved
    item = world.catalogue.item(first)
    assert item is not None and [(d.decision, d.reason) for d in item.decisions] == [("reject", "画面模糊，且纹饰细节无法辨认")]
    assert world.batch_calls == [run]
    assert problems == []
    assert (tmp_path / "item-page.png").stat().st_size > 10_000


def test_digitisation_staff_retry_a_quarantined_file_in_a_real_browser(world: ReviewWorld, base_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    item_id = world.add_quarantined(world.new_run(), file_name="GJ-0042.tif")
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}).new_page()
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.goto(f"{base_url}/login?next=/quarantine")
            page.fill("#username", "dora")
            page.fill("#password", PASSWORD)
            page.click("form[action='/login'] button[type=submit]")
            expect(page.locator("h1")).to_contain_text("隔离文件")
            expect(page.locator("table").first).to_contain_text("GJ-0042.tif")
            page.click(f"form[action='/items/{item_id}/retry'] button[type=submit]")
            expect(page).to_have_url(f"{base_url}/quarantine?done=retried&item={item_id}")
            expect(page.locator(".flash")).to_contain_text(f"#{item_id} 已重新排队")
            expect(page.locator(f"form[action='/items/{item_id}/retry']")).to_have_count(0)
        finally:
            browser.close()
    assert world.catalogue.item_status(item_id) is ItemStatus.received
    assert problems == []

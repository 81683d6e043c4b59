"""Bulk approval in a real Chromium (Debian's, driven by Playwright) against the app served by uvicorn:
tick items in the queue, read the confirmation page (what will be approved, what is refused and why),
confirm. Screenshots go to test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from review_world import PASSWORD, ReviewWorld
from test_browser import CHROMIUM, CHROMIUM_ARGS

from relicflow.background_server import serve_in_background
from relicflow.catalogue import ItemStatus

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"),
]


@pytest.fixture
def base_url(world: ReviewWorld) -> Iterator[str]:
    with serve_in_background(world.app()) as url:
        yield url


def test_bulk_approval_with_its_confirmation_page_in_a_real_browser(world: ReviewWorld, base_url: str, artifacts: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    run = world.new_run()
    plain = [world.add_item(run, accession=f"BB-{n}", title=f"陶俑{n}") for n in range(2)]
    graded = world.add_item(run, accession="BB-G", title="青铜鼎", grade="一级", required_approvals=2)
    untouched = world.add_item(run, accession="BB-U", title="瓷盘")
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}).new_page()
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.goto(f"{base_url}/login?next=/")
            page.fill("#username", "alice")
            page.fill("#password", PASSWORD)
            page.click("form[action='/login'] button[type=submit]")
            for item_id in (*plain, graded):
                page.check(f"input[name=item][value='{item_id}']")
            page.screenshot(path=str(artifacts / "1-queue-ticked.png"), full_page=True)
            page.click("form.bulk-selected button[type=submit]")

            expect(page.locator("h1")).to_contain_text("确认批量通过")
            expect(page.locator(".bulk-accepted tbody tr")).to_have_count(2)
            expect(page.locator(".bulk-refused")).to_contain_text("BB-G")
            expect(page.locator(".bulk-refused")).to_contain_text("需两位审核员")
            page.screenshot(path=str(artifacts / "2-confirm-bulk.png"), full_page=True)
            assert all(world.catalogue.item_status(i) is ItemStatus.awaiting_review for i in plain)
            page.click("button.confirm-yes")

            expect(page).to_have_url(f"{base_url}/?done=bulk&approved=2&refused=0")
            expect(page.locator(".flash")).to_contain_text("批量通过：2 件已通过。")
            expect(page.locator("tr[data-queue-row]")).to_have_count(2)
            page.screenshot(path=str(artifacts / "3-queue-after-bulk.png"), full_page=True)
        finally:
            browser.close()
    assert [world.catalogue.item_status(i) for i in (*plain, graded, untouched)] == [
        ItemStatus.approved, ItemStatus.approved, ItemStatus.awaiting_review, ItemStatus.awaiting_review]
    assert problems == []

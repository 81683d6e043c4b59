"""The queue's filters in a real Chromium: a reviewer narrows the queue with chips, a search and a sort, pages
through it, opens an item, steps to the next one in the filtered order, approves it, lands on the next item
of the same order, and goes back to the same filtered queue. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from review_world import PASSWORD, ReviewWorld

from relicflow.background_server import serve_in_background
from relicflow.catalogue import ItemStatus
from relicflow.catalogue.ingested import WarningNote
from tests.review_ui.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"),
]

WARN = WarningNote(code="soft_focus", message_en="The image is soft.", message_zh="图像不够清晰。")


@pytest.fixture
def base_url(world: ReviewWorld) -> Iterator[str]:
    world.settings.review_page_size = 5
    with serve_in_background(world.app()) as url:
        yield url


def test_reviewer_filters_searches_pages_and_keeps_their_place_in_a_real_browser(world: ReviewWorld, base_url: str,
                                                                                 artifacts: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    run1, run2 = world.new_run(), world.new_run()
    plain = [world.add_item(run1, accession=f"QF-1{n:02d}", title="青铜爵") for n in range(4)]
    warned = [world.add_item(run2, accession=f"QF-2{n:02d}", title="青花梅瓶", warnings=[WARN]) for n in range(7)]
    graded = world.add_item(run2, accession="QF-300", title="玉琮", grade="一级", required_approvals=2)

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 1000}).new_page()
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.goto(f"{base_url}/login")
            page.fill("#username", "alice")
            page.fill("#password", PASSWORD)
            page.click("form[action='/login'] button[type=submit]")
            expect(page.locator("table.queue tbody tr")).to_have_count(5)  # a page of five out of twelve
            expect(page.locator(".chip-warnings strong")).to_have_text("7")
            expect(page.locator(".chip-two_approvals strong")).to_have_text("1")
            page.screenshot(path=str(artifacts / "queue-first-page.png"), full_page=True)

            page.click("a.chip-warnings")  # chip: only items with warnings
            expect(page.locator("a.chip-warnings")).to_have_class(re.compile("chip-active"))
            expect(page.locator("table.queue tbody tr")).to_have_count(5)
            expect(page.locator("table.queue")).not_to_contain_text("QF-100")
            page.click("a.pager-next")
            expect(page.locator("table.queue tbody tr")).to_have_count(2)
            page.click("a.pager-prev")
            expect(page.locator("table.queue tbody tr").first).to_contain_text("QF-200")

            page.select_option("#queue-sort", "newest")  # the form keeps the chip
            page.fill("#queue-q", "qf-20")
            page.click(".queue-search button[type=submit]")
            expect(page).to_have_url(re.compile(r"warnings=1"))
            rows = page.locator("table.queue tbody tr")
            expect(rows).to_have_count(5)
            expect(rows.first).to_contain_text("QF-206")  # newest first
            page.screenshot(path=str(artifacts / "queue-filtered-searched.png"), full_page=True)

            rows.nth(1).locator("a.btn").click()  # QF-205
            expect(page.locator("h1")).to_contain_text("QF-205")
            page.click("a.item-next")  # next in the filtered, newest-first order
            expect(page.locator("h1")).to_contain_text("QF-204")
            page.screenshot(path=str(artifacts / "item-in-filtered-order.png"), full_page=True)
            page.click(".decide-approve button[type=submit]")
            expect(page.locator(".flash")).to_contain_text(f"藏品 #{warned[4]} 已通过")
            expect(page.locator("h1")).to_contain_text("QF-203")  # the next of the same order, not the next id
            page.click("a.back")
            expect(page).to_have_url(re.compile(r"warnings=1.*q=qf-20.*sort=newest"))
            expect(page.locator("a.chip-warnings")).to_have_class(re.compile("chip-active"))
            expect(page.locator("#queue-q")).to_have_value("qf-20")
            expect(page.locator("table.queue")).not_to_contain_text("QF-204")  # decided: gone from the queue
            page.screenshot(path=str(artifacts / "back-to-the-same-queue.png"), full_page=True)

            page.goto(f"{base_url}/?approval=everything")
            expect(page.locator("main")).to_contain_text("审核筛选无效")
        finally:
            browser.close()

    assert world.catalogue.item_status(warned[4]) is ItemStatus.approved
    assert all(world.catalogue.item_status(i) is ItemStatus.awaiting_review for i in (*plain, graded, *warned[:4], *warned[5:]))
    assert [m for m in problems if "400" not in m] == []  # the deliberately bad link's 400 is the one console error
    assert (artifacts / "queue-filtered-searched.png").stat().st_size > 10_000

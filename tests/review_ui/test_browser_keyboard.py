"""Reviewing three items with the keyboard alone, in a real Chromium (Debian's, driven by Playwright)
against the app served by uvicorn: approve one, reject one and send one back, each through the same
forms and confirmation pages a mouse uses. Screenshots go to test-artifacts/."""

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


def test_three_items_reviewed_with_the_keyboard_alone(world: ReviewWorld, base_url: str, artifacts: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    run = world.new_run()
    first = world.add_item(run, title="青花缠枝莲纹梅瓶", accession="KB-0001")
    second = world.add_item(run, title="青铜饕餮纹鼎", accession="KB-0002")
    third = world.add_item(run, title="白玉螭龙纹璧", accession="KB-0003")

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}).new_page()
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)  # e.g. CSP violations
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.goto(f"{base_url}/login?next=/")
            page.fill("#username", "alice")
            page.fill("#password", PASSWORD)
            page.keyboard.press("Enter")

            # the queue: the shortcuts are listed; j selects the first row, Enter opens it
            expect(page.locator("h1")).to_contain_text("待审藏品")
            page.keyboard.press("?")
            expect(page.locator("details.shortcuts")).to_have_attribute("open", "")
            expect(page.locator("details.shortcuts")).to_contain_text("下一行")
            page.screenshot(path=str(artifacts / "1-queue-shortcuts.png"), full_page=True)
            page.keyboard.press("j")
            expect(page.locator("a.review-link").first).to_be_focused()
            page.keyboard.press("Enter")
            expect(page).to_have_url(f"{base_url}/items/{first}")

            # j and k follow the item page's next and previous in the queue's order; u goes back to the queue
            page.keyboard.press("j")
            expect(page.locator("h1")).to_contain_text("KB-0002")
            page.keyboard.press("k")
            expect(page.locator("h1")).to_contain_text("KB-0001")

            # z zooms the photograph to its own size and back; a selects Approve, which Enter presses
            page.keyboard.press("z")
            expect(page.locator(".views")).to_have_class("views zoomed")
            page.keyboard.press("z")
            expect(page.locator(".views")).to_have_class("views")
            page.keyboard.press("a")
            expect(page.locator(".decide-approve button[type=submit]")).to_be_focused()
            assert world.catalogue.item_status(first) is ItemStatus.awaiting_review  # a key alone decides nothing
            page.keyboard.press("Enter")
            expect(page).to_have_url(f"{base_url}/items/{second}?done=approved&item={first}")

            # r goes to the reason; keys typed there are text, not shortcuts; Ctrl+Enter submits it to the
            # confirmation page, where y selects Confirm and Enter confirms
            page.keyboard.press("r")
            expect(page.locator("#reject-reason")).to_be_focused()
            page.keyboard.type("器身有裂纹 ajsz")
            expect(page).to_have_url(f"{base_url}/items/{second}?done=approved&item={first}")
            page.keyboard.press("Control+Enter")
            expect(page.locator("h1")).to_contain_text("确认驳回")
            expect(page.locator(".confirm-reason")).to_contain_text("器身有裂纹 ajsz")
            page.screenshot(path=str(artifacts / "2-confirm-reject-by-keyboard.png"), full_page=True)
            page.keyboard.press("y")
            expect(page.locator("button.confirm-yes")).to_be_focused()
            page.keyboard.press("Enter")
            expect(page).to_have_url(f"{base_url}/items/{third}?done=rejected&item={second}")

            # s: the send-back note, the same way; Escape leaves the box without sending anything
            page.keyboard.press("s")
            expect(page.locator("#send-back-reason")).to_be_focused()
            page.keyboard.press("Escape")
            expect(page.locator("#send-back-reason")).not_to_be_focused()
            page.keyboard.press("s")
            page.keyboard.type("请补拍底部款识")
            page.keyboard.press("Control+Enter")
            expect(page.locator("h1")).to_contain_text("确认退回")
            page.keyboard.press("y")
            page.keyboard.press("Enter")
            expect(page).to_have_url(f"{base_url}/?done=sent_back&item={third}")
            expect(page.locator(".empty")).to_contain_text("目前没有待审藏品")
            page.screenshot(path=str(artifacts / "3-queue-done.png"), full_page=True)
        finally:
            browser.close()

    assert [world.catalogue.item_status(i) for i in (first, second, third)] == [
        ItemStatus.approved, ItemStatus.rejected, ItemStatus.sent_back]
    reasons = [(d.decision, d.reason) for i in (second, third) for d in world.catalogue.item(i).decisions]  # type: ignore[union-attr]
    assert reasons == [("reject", "器身有裂纹 ajsz"), ("send_back", "请补拍底部款识")]
    assert problems == []

"""A graded relic's second approval in a real Chromium: a reviewer gives the first, a second reviewer (not
senior) is refused with the reason in their own language, a senior reviewer gives it and the item is
approved. Screenshots go to test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from review_world import PASSWORD, ReviewWorld

from relicflow.background_server import serve_in_background
from relicflow.catalogue import ItemStatus
from relicflow.i18n import t
from tests.review_ui.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"),
]


def test_a_senior_reviewer_gives_the_second_approval_in_a_real_browser(world: ReviewWorld, artifacts: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    item_id = world.add_item(world.new_run(), title="青铜饕餮纹方鼎", accession="GJ-0001", grade="一级", required_approvals=2)
    problems: list[str] = []
    with serve_in_background(world.app()) as base_url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            def approve_as(name: str, locale: str, shot: str) -> object:
                context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 1000})
                page = context.new_page()
                page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
                page.on("pageerror", lambda exc: problems.append(str(exc)))
                page.goto(f"{base_url}/items/{item_id}")
                expect(page).to_have_url(f"{base_url}/login?next=/items/{item_id}")
                page.fill("#username", name)
                page.fill("#password", PASSWORD)
                page.click("form[action='/login'] button[type=submit]")
                expect(page).to_have_url(f"{base_url}/items/{item_id}")
                page.screenshot(path=str(artifacts / f"{shot}-before.png"), full_page=True)
                page.click(".decide-approve button[type=submit]")
                page.wait_for_load_state("load")
                page.screenshot(path=str(artifacts / f"{shot}-after.png"), full_page=True)
                return page

            first = approve_as("alice", "zh-CN", "1-alice-first-approval")
            expect(first.locator(".flash")).to_contain_text(f"#{item_id}")
            assert world.catalogue.item_status(item_id) is ItemStatus.awaiting_review

            refused = approve_as("bob", "en-GB", "2-bob-refused")
            expect(refused.locator("#decision-error")).to_have_text(t("web.decision.needs_senior", "en", n=2))
            assert world.catalogue.item_status(item_id) is ItemStatus.awaiting_review
            assert [d.reviewer.username for d in world.catalogue.approvals_for(item_id)] == ["alice"]

            senior = approve_as("sara", "zh-CN", "3-sara-second-approval")
            expect(senior.locator(".flash")).to_contain_text(t("web.flash.approved", "zh-CN", id=item_id))
            assert world.catalogue.item_status(item_id) is ItemStatus.approved
            assert [d.reviewer.username for d in world.catalogue.approvals_for(item_id)] == ["alice", "sara"]
        finally:
            browser.close()
    # the refusal is a 400 page, which Chromium reports on the console; anything else (CSP, scripts) is a problem
    assert [m for m in problems if "status of 400" not in m] == []

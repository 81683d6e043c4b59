"""The quarantine page as digitisation staff use it: quarantined and failed files with what to do, what
the last ingest run skipped, and a CSRF-protected retry for the roles that may ask for one."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from review_world import ReviewWorld, form_token
from starlette.testclient import TestClient

from relicflow.catalogue import ItemStatus

SignedIn = Callable[[str], TestClient]


def failed_item(world: ReviewWorld, run_id: int, *, attempts: int = 1, file_name: str = "GJ-0042.tif") -> int:
    data = f"bytes of {file_name}".encode()
    item_id, _ = world.catalogue.register_received(sha256=hashlib.sha256(data).hexdigest(), file_name=file_name,
                                                   inbox_path=f"inbox/{file_name}", size_bytes=len(data), ingest_run_id=run_id)
    for attempt in range(attempts):
        if attempt:
            world.catalogue.requeue(item_id, actor="ingest", reason="automatic_retry")
        world.catalogue.record_ingest_failure(item_id, error="StorageError: <disk> said no\nTraceback ...",
                                              max_attempts=world.settings.ingest_max_attempts)
    return item_id


def test_failed_items_show_their_error_attempts_and_whether_they_retry_by_themselves(world: ReviewWorld, signed_in: SignedIn) -> None:
    run = world.new_run()
    waiting = failed_item(world, run, attempts=1, file_name="first.tif")
    stuck = failed_item(world, run, attempts=world.settings.ingest_max_attempts, file_name="second.tif")
    page = signed_in("dora").get("/quarantine?lang=en")
    assert page.status_code == 200
    html = page.text
    assert "Failed (an internal error)" in html and "first.tif" in html and "second.tif" in html
    assert "StorageError: &lt;disk&gt; said no" in html  # autoescaped, first line only
    assert "Traceback" not in html
    assert f"1 / {world.settings.ingest_max_attempts}" in html and "retried by the next run" in html
    assert "needs an administrator" in html
    assert f'action="/items/{waiting}/retry"' in html and f'action="/items/{stuck}/retry"' in html
    zh = signed_in("dora").get("/quarantine?lang=zh-CN").text
    assert "处理失败（系统内部错误）" in zh and "需管理员处理" in zh


def test_reviewers_see_the_page_but_get_no_retry_button_and_cannot_post_one(world: ReviewWorld, signed_in: SignedIn) -> None:
    item_id = world.add_quarantined(world.new_run())
    client = signed_in("alice")
    html = client.get("/quarantine").text
    assert "broken.tif" in html and "/retry" not in html
    token = form_token(html)  # the sign-out form's token is the session's token
    r = client.post(f"/items/{item_id}/retry", data={"csrf_token": token})
    assert r.status_code == 403
    assert world.catalogue.item_status(item_id) is ItemStatus.quarantined


def test_retry_needs_the_csrf_token_then_queues_the_item_and_says_so(world: ReviewWorld, signed_in: SignedIn) -> None:
    item_id = world.add_quarantined(world.new_run())
    client = signed_in("dora")
    for token in ("", "wrong"):
        assert client.post(f"/items/{item_id}/retry", data={"csrf_token": token}).status_code == 403
    assert world.catalogue.item_status(item_id) is ItemStatus.quarantined
    token = form_token(client.get("/quarantine").text)
    r = client.post(f"/items/{item_id}/retry", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == f"/quarantine?done=retried&item={item_id}"
    assert world.catalogue.item_status(item_id) is ItemStatus.received
    assert world.catalogue.audit_entries(item_id=item_id)[-1].actor == "dora"
    follow = client.get(r.headers["location"] + "&lang=en")
    assert f"#{item_id} is queued again" in follow.text
    # a second click: the item is no longer quarantined, so the page re-renders with 400 and says why
    again = client.post(f"/items/{item_id}/retry", data={"csrf_token": token})
    assert again.status_code == 400 and f"#{item_id} is no longer failed or quarantined, so it cannot be retried." in again.text


def test_the_last_runs_skipped_files_and_sheet_problems_are_listed(world: ReviewWorld, signed_in: SignedIn) -> None:
    run = world.new_run()
    world.catalogue.finish_ingest_run(run, {
        "skipped_files": [{"file": "big.tif.part", "reason": "partial_file"}, {"file": "link.jpg", "reason": "symlink"}],
        "sheet_problems": ["sheet.csv: The sheet sheet.csv has no accession-number column"], "stopped_because": None})
    html = signed_in("dora").get("/quarantine?lang=en").text
    assert f"Not taken in by the last ingest run (#{run}" in html
    assert "big.tif.part" in html and "still downloading or copying" in html and "a link, not followed" in html
    assert "has no accession-number column" in html

"""Bulk approval through the review app: a selected set or a whole ingest run, a confirmation page that
lists what will be approved and refuses what needs a reviewer's own look, then one decision per item.
Real app (TestClient), real SQLite catalogue, real store."""

from __future__ import annotations

import re
from collections.abc import Callable

from review_world import ReviewWorld, form_token
from starlette.testclient import TestClient

from relicflow.catalogue import ItemStatus
from relicflow.catalogue.bulk_approval import bulk_refusal
from relicflow.catalogue.ingested import WarningNote

SOFT = WarningNote(code="soft_focus", message_en="The image is soft.", message_zh="图像不够清晰。")


def confirmed_fields(html: str) -> list[str]:
    return re.findall(r'name="confirmed" value="([^"]+)"', html)


def test_the_rule_refuses_what_needs_its_own_look() -> None:
    plain = {"status": "awaiting_review", "required_approvals": 1, "open_warnings": 0, "duplicate_candidates": 0}
    assert bulk_refusal(**plain) is None
    assert bulk_refusal(**{**plain, "status": "approved"}) == "not_awaiting_review"
    assert bulk_refusal(**{**plain, "required_approvals": 2}) == "needs_second_approver"
    assert bulk_refusal(**{**plain, "open_warnings": 1}) == "unresolved_warnings"
    assert bulk_refusal(**{**plain, "duplicate_candidates": 1}) == "duplicate_candidates"


def test_a_selected_set_is_confirmed_then_approved_one_decision_each(world: ReviewWorld, signed_in: Callable[[str], TestClient]) -> None:
    run = world.new_run()
    plain = [world.add_item(run, accession=f"BK-{n}") for n in range(2)]
    graded = world.add_item(run, accession="BK-G", grade="一级", required_approvals=2)
    warned = world.add_item(run, accession="BK-W", warnings=[SOFT])
    original = world.add_item(run, accession="BK-O")
    copy = world.add_item(run, accession="BK-C", duplicate_of=[original])
    client = signed_in("alice")
    queue = client.get("/")
    assert 'name="item" value="%d" form="bulk-form"' % plain[0] in queue.text
    token = form_token(queue.text)

    page = client.post("/bulk/approve", data={"csrf_token": token, "item": [*plain, graded, warned, copy]})
    assert page.status_code == 200
    assert [f.split(":")[0] for f in confirmed_fields(page.text)] == [str(i) for i in plain]
    assert "将通过以下 2 件藏品" in page.text and "以下 3 件不能批量通过" in page.text
    assert "定级文物，需两位审核员分别在藏品页审核通过" in page.text
    assert "有未处理的质量警告" in page.text and "有近似重复候选" in page.text
    assert all(world.catalogue.item_status(i) is ItemStatus.awaiting_review for i in plain)  # nothing recorded yet

    done = client.post("/bulk/approve", data={"csrf_token": token, "confirm": "yes", "confirmed": confirmed_fields(page.text)})
    assert done.status_code == 303 and done.headers["location"] == "/?done=bulk&approved=2&refused=0"
    assert "批量通过：2 件已通过。" in client.get(done.headers["location"]).text
    assert [world.catalogue.item_status(i) for i in plain] == [ItemStatus.approved] * 2
    assert [world.catalogue.item_status(i) for i in (graded, warned, copy)] == [ItemStatus.awaiting_review] * 3
    for item_id in plain:  # each its own decision, bound to what the confirmation page showed, in the chained record
        [decision] = world.catalogue.item(item_id).decisions  # type: ignore[union-attr]
        assert decision.decision == "approve" and decision.reviewer_id == world.user_ids["alice"] and decision.seen
    assert [e.action for e in world.catalogue.audit_entries() if e.item_id in plain].count("review:approve") == 2
    assert world.batch_calls == []  # the run still has undecided items


def test_a_whole_ingest_run_and_the_gate_hears_when_it_is_decided(world: ReviewWorld, signed_in: Callable[[str], TestClient]) -> None:
    other = world.new_run()
    elsewhere = world.add_item(other)
    run = world.new_run()
    items = [world.add_item(run) for _ in range(3)]
    client = signed_in("bob")
    queue = client.get("/").text
    assert f'<option value="{run}">第 {run} 批</option>' in queue
    token = form_token(queue)
    page = client.post("/bulk/approve", data={"csrf_token": token, "ingest_run": str(run)})
    assert [int(f.split(":")[0]) for f in confirmed_fields(page.text)] == items
    done = client.post("/bulk/approve", data={"csrf_token": token, "confirm": "yes", "confirmed": confirmed_fields(page.text)})
    assert done.status_code == 303
    assert [world.catalogue.item_status(i) for i in items] == [ItemStatus.approved] * 3
    assert world.catalogue.item_status(elsewhere) is ItemStatus.awaiting_review
    assert world.batch_calls == [run]


def test_what_changed_after_the_confirmation_page_is_not_approved(world: ReviewWorld, signed_in: Callable[[str], TestClient]) -> None:
    run = world.new_run()
    first, second, third = (world.add_item(run) for _ in range(3))
    alice, bob = signed_in("alice"), signed_in("bob")
    token = form_token(alice.get("/").text)
    fields = confirmed_fields(alice.post("/bulk/approve", data={"csrf_token": token, "item": [first, second, third]}).text)
    # meanwhile: bob rejects the second; the third's confirmation is not what the page showed
    world.catalogue.record_decision(second, reviewer_id=world.user_ids["bob"], decision="reject", reason="裂纹")
    fields = [f if not f.startswith(f"{third}:") else f"{third}:{'0' * 32}" for f in fields]

    done = alice.post("/bulk/approve", data={"csrf_token": token, "confirm": "yes", "confirmed": fields})
    assert done.headers["location"] == "/?done=bulk&approved=1&refused=2"
    assert "1 件已通过，2 件未通过" in alice.get(done.headers["location"]).text
    assert [world.catalogue.item_status(i) for i in (first, second, third)] == [
        ItemStatus.approved, ItemStatus.rejected, ItemStatus.awaiting_review]
    assert bob.get("/").status_code == 200


def test_bulk_approval_is_refused_without_the_token_the_role_or_a_bounded_selection(
        world: ReviewWorld, signed_in: Callable[[str], TestClient]) -> None:
    run = world.new_run()
    items = [world.add_item(run) for _ in range(3)]
    alice = signed_in("alice")
    token = form_token(alice.get("/").text)

    assert alice.post("/bulk/approve", data={"item": items}).status_code == 403  # no CSRF token
    dora = signed_in("dora")  # digitisation staff do not decide
    assert dora.post("/bulk/approve", data={"csrf_token": form_token(dora.get("/quarantine").text), "item": items}).status_code == 403
    anonymous = world.client().post("/bulk/approve", data={"item": items})
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    nothing = alice.post("/bulk/approve", data={"csrf_token": token})
    assert nothing.status_code == 400 and "请先在队列中勾选藏品" in nothing.text
    forged = alice.post("/bulk/approve", data={"csrf_token": token, "confirm": "yes", "confirmed": [f"{items[0]}:not-a-digest"]})
    assert forged.status_code == 400 and "未记录任何决定" in forged.text
    empty_run = world.new_run()
    assert "没有待审藏品" in alice.post("/bulk/approve", data={"csrf_token": token, "ingest_run": str(empty_run)}).text

    world.settings = world.settings.model_copy(update={"bulk_approve_max": 2})
    small = signed_in("alice")
    too_many = small.post("/bulk/approve", data={"csrf_token": form_token(small.get("/").text), "ingest_run": str(run)})
    assert too_many.status_code == 400 and "所选共 3 件，超过单次批量通过上限 2 件" in too_many.text
    assert all(world.catalogue.item_status(i) is ItemStatus.awaiting_review for i in items)

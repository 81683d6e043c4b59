"""Reject and send back through a confirmation page; an administrator's audited reopen of a decision, and
what the two-reviewer rule and the mint's rules count after it."""

from __future__ import annotations

import html
from collections.abc import Callable

import pytest
from markupsafe import escape
from review_world import USERS, ReviewWorld, form_token
from sqlalchemy import func, select
from starlette.testclient import TestClient

from relicflow.audit_record import verify_record
from relicflow.catalogue import ItemStatus
from relicflow.catalogue.models import AuditEntry, ReviewDecision, StatusTransition
from relicflow.errors import ReopenRefused
from relicflow.i18n import t
from relicflow.roles import Action
from review_ui.access import denial_message

SignedIn = Callable[[str], TestClient]


def decision_count(world: ReviewWorld) -> int:
    with world.catalogue.session() as s:
        return s.scalar(select(func.count(ReviewDecision.id))) or 0


def audit_count(world: ReviewWorld) -> int:
    """Entries about items (sign-ins write their own entries, which are not what these tests count)."""
    with world.catalogue.session() as s:
        return s.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.item_id.is_not(None))) or 0


def post_decision(client: TestClient, item_id: int, decision: str, reason: str, **extra: str) -> object:
    """As the item page's form sends it: the session's CSRF token and what the page showed (``seen``)."""
    page = client.get(f"/items/{item_id}").text
    data = {"decision": decision, "reason": reason, "csrf_token": form_token(page), "seen": form_token(page, "seen")}
    return client.post(f"/items/{item_id}/decision", data={**data, **extra})


def post_reopen(client: TestClient, item_id: int, reason: str, **extra: str) -> object:
    token = form_token(client.get(f"/items/{item_id}").text)
    return client.post(f"/items/{item_id}/reopen", data={"reason": reason, "csrf_token": token, **extra})


def hidden(page: str, name: str) -> str:
    return html.unescape(form_token(page, name))


# -- (4) confirmation before reject and send back ------------------------------------------------


@pytest.mark.parametrize(("decision", "status", "title_key"), [
    ("reject", ItemStatus.rejected, "web.confirm.title.reject"),
    ("send_back", ItemStatus.sent_back, "web.confirm.title.send_back"),
])
def test_reject_and_send_back_take_effect_only_from_the_confirmation_page(
        world: ReviewWorld, signed_in: SignedIn, decision: str, status: ItemStatus, title_key: str) -> None:
    run = world.new_run()
    item_id = world.add_item(run, accession="MB-7001", title="青花缠枝莲纹梅瓶")
    client = signed_in("alice")
    reason = '瓶口反光过强 "请" <重拍> & 补光'
    first = post_decision(client, item_id, decision, f"  {reason}  ")
    assert first.status_code == 200
    page = first.text
    assert t(title_key, "zh-CN") in page and "MB-7001" in page and "青花缠枝莲纹梅瓶" in page
    assert str(escape(reason)) in page  # the reason as typed, escaped
    assert "<重拍>" not in page
    # nothing is recorded yet: no decision row, no audit entry, no status change, no batch callback
    assert decision_count(world) == 0 and world.catalogue.item_status(item_id) is ItemStatus.awaiting_review
    assert world.batch_calls == []
    # the Confirm button carries the session's CSRF token and the decision exactly as typed
    assert hidden(page, "csrf_token") == form_token(client.get(f"/items/{item_id}").text)
    assert hidden(page, "decision") == decision and hidden(page, "reason") == reason
    # and what the reviewer saw, so a rescan arriving before the confirmation still refuses it
    assert hidden(page, "seen") == form_token(client.get(f"/items/{item_id}").text, "seen") != ""
    assert 'name="confirm" value="yes"' in page and f'href="/items/{item_id}"' in page  # and a way back

    confirmed = client.post(f"/items/{item_id}/decision", data={"decision": decision, "reason": reason, "confirm": "yes",
                                                                "csrf_token": hidden(page, "csrf_token")})
    assert confirmed.status_code == 303
    assert world.catalogue.item_status(item_id) is status
    item = world.catalogue.item(item_id)
    assert item is not None and [(d.decision, d.reason) for d in item.decisions] == [(decision, reason)]
    assert world.batch_calls == [run]


def test_the_confirmation_page_goes_back_with_the_text_kept_and_records_nothing(world: ReviewWorld, signed_in: SignedIn) -> None:
    item_id = world.add_item(world.new_run())
    client = signed_in("alice")
    r = post_decision(client, item_id, "send_back", "色卡缺失，请重拍", confirm="edit")
    assert r.status_code == 200
    assert '<textarea id="send-back-reason" name="reason" rows="3" required maxlength="2000">色卡缺失，请重拍</textarea>' in r.text
    assert decision_count(world) == 0 and world.catalogue.item_status(item_id) is ItemStatus.awaiting_review


def test_an_empty_reason_is_still_a_400_on_the_item_page_not_a_confirmation(world: ReviewWorld, signed_in: SignedIn) -> None:
    item_id = world.add_item(world.new_run())
    client = signed_in("alice")
    r = post_decision(client, item_id, "reject", "   ")
    assert r.status_code == 400 and t("web.decision.reason_required", "zh-CN") in r.text
    assert 'name="confirm"' not in r.text and 'name="decision" value="reject"' in r.text
    r = post_decision(client, item_id, "send_back", "", confirm="yes")
    assert r.status_code == 400 and t("web.decision.note_required", "zh-CN") in r.text
    assert decision_count(world) == 0


def test_a_confirmation_for_an_item_decided_meanwhile_is_refused(world: ReviewWorld, signed_in: SignedIn) -> None:
    item_id = world.add_item(world.new_run())
    alice, bob = signed_in("alice"), signed_in("bob")
    page = post_decision(alice, item_id, "reject", "与登记信息不符").text
    assert post_decision(bob, item_id, "approve", "").status_code == 303
    r = alice.post(f"/items/{item_id}/decision", data={"decision": "reject", "reason": "与登记信息不符", "confirm": "yes",
                                                       "csrf_token": hidden(page, "csrf_token")})
    assert r.status_code == 400
    assert world.catalogue.item_status(item_id) is ItemStatus.approved and decision_count(world) == 1


def test_approve_stays_one_step(world: ReviewWorld, signed_in: SignedIn) -> None:
    item_id = world.add_item(world.new_run())
    r = post_decision(signed_in("alice"), item_id, "approve", "")
    assert r.status_code == 303 and world.catalogue.item_status(item_id) is ItemStatus.approved


# -- (5) an administrator reopens a decision -----------------------------------------------------


def reject(world: ReviewWorld, item_id: int, reviewer: str = "alice") -> None:
    world.catalogue.record_decision(item_id, reviewer_id=world.user_ids[reviewer], decision="reject", reason="误判：看错了藏品")


def approve(world: ReviewWorld, item_id: int, reviewer: str) -> ItemStatus:
    return world.catalogue.record_decision(item_id, reviewer_id=world.user_ids[reviewer], decision="approve")


def test_admin_reopens_a_rejected_item_through_the_confirmation_page(world: ReviewWorld, signed_in: SignedIn) -> None:
    item_id = world.add_item(world.new_run())
    reject(world, item_id)
    adam = signed_in("adam")
    page = adam.get(f"/items/{item_id}").text
    assert 'action="/items/%d/reopen"' % item_id in page and t("web.reopen.title", "zh-CN") in page

    first = post_reopen(adam, item_id, "审核员误点了驳回")
    assert first.status_code == 200 and t("web.confirm.title.reopen", "zh-CN") in first.text
    assert "审核员误点了驳回" in first.text and hidden(first.text, "reason") == "审核员误点了驳回"
    assert world.catalogue.item_status(item_id) is ItemStatus.rejected  # not yet

    r = adam.post(f"/items/{item_id}/reopen", data={"reason": "审核员误点了驳回", "confirm": "yes",
                                                      "csrf_token": hidden(first.text, "csrf_token")})
    assert r.status_code == 303 and r.headers["location"] == f"/items/{item_id}?done=reopened&item={item_id}"
    assert world.catalogue.item_status(item_id) is ItemStatus.awaiting_review
    # a status transition and a sealed audit entry, the old decision kept
    with world.catalogue.session() as s:
        last = s.scalars(select(StatusTransition).where(StatusTransition.item_id == item_id).order_by(StatusTransition.id.desc())).first()
        assert last is not None and (last.from_status, last.to_status, last.actor, last.reason) == (
            "rejected", "awaiting_review", "adam", "审核员误点了驳回")
    entry = world.catalogue.audit_entries(item_id=item_id)[-1]
    assert entry.action == "status:awaiting_review" and entry.details["reopen"] is True
    assert entry.details["reason"] == "审核员误点了驳回" and len(entry.details["decisions_set_aside"]) == 1
    assert decision_count(world) == 1
    report = verify_record(world.catalogue, world.store)
    assert report.ok, report.summary()
    # the history shows the reopen, and the earlier rejection as no longer counting
    shown = adam.get(r.headers["location"]).text
    assert t("web.flash.reopened", "zh-CN", id=item_id) in shown
    assert t("web.history.reopened", "zh-CN", was=t("web.status.rejected", "zh-CN")) in shown
    assert 'class="history-decision set-aside"' in shown and t("web.history.set_aside", "zh-CN") in shown
    assert 'class="history-reopen"' in shown and "审核员误点了驳回" in shown


def test_a_reopened_rejected_item_can_be_approved_afresh_and_minted(world: ReviewWorld, signed_in: SignedIn) -> None:
    item_id = world.add_item(world.new_run())
    reject(world, item_id)
    world.catalogue.reopen_decision(item_id, admin_id=world.user_ids["adam"], reason="驳回有误")
    r = post_decision(signed_in("bob"), item_id, "approve", "")
    assert r.status_code == 303 and world.catalogue.item_status(item_id) is ItemStatus.approved
    # the mint's rules, re-derived from the chained record: the rejection before the reopen withdraws nothing
    assessment = world.catalogue.assess_for_mint()
    assert assessment.held == []
    [(eligible_id, verdict)] = assessment.eligible
    item = world.catalogue.item(item_id)
    assert item is not None
    bobs = [d.id for d in item.decisions if d.decision == "approve"]
    assert eligible_id == item_id and [a.decision_id for a in verdict.approvals] == bobs
    assert [a.reviewer for a in verdict.approvals] == ["bob"]
    assert verify_record(world.catalogue, world.store).ok


def test_a_reopened_approved_item_is_not_minted_on_its_old_approvals(world: ReviewWorld, signed_in: SignedIn) -> None:
    """A graded relic approved by alice and sara (a senior reviewer), reopened: alice approving again is one
    approval of two, not two (sara's counted before the reopen); nothing is minted until a senior reviewer
    approves anew."""
    item_id = world.add_item(world.new_run(), grade="一级", required_approvals=2)
    approve(world, item_id, "alice")
    assert approve(world, item_id, "sara") is ItemStatus.approved
    old = [d.id for d in world.catalogue.item(item_id).decisions]  # type: ignore[union-attr]
    world.catalogue.reopen_decision(item_id, admin_id=world.user_ids["adam"], reason="登记信息有误，需重新核对")
    assert world.catalogue.assess_for_mint().eligible == []  # awaiting review: the old approvals mint nothing

    alice = signed_in("alice")
    page = alice.get(f"/items/{item_id}").text
    assert t("web.approvals.count", "zh-CN", have=0, need=2) in page
    assert 'name="decision" value="approve"' in page  # alice may approve again: her old approval no longer counts
    assert post_decision(alice, item_id, "approve", "").status_code == 303
    assert world.catalogue.item_status(item_id) is ItemStatus.awaiting_review  # 1 of 2, not 3 of 2
    assert world.catalogue.assess_for_mint().eligible == []
    assert [d.id for d in world.catalogue.approvals_for(item_id)] == [max(d.id for d in world.catalogue.item(item_id).decisions)]  # type: ignore[union-attr]
    assert post_decision(alice, item_id, "approve", "").status_code == 400  # her new approval does count: not twice

    assert approve(world, item_id, "sara") is ItemStatus.approved
    [(_, verdict)] = world.catalogue.assess_for_mint().eligible
    assert {a.reviewer for a in verdict.approvals} == {"alice", "sara"}
    assert not {a.decision_id for a in verdict.approvals} & set(old)
    assert verify_record(world.catalogue, world.store).ok


def test_only_an_administrator_can_reopen(world: ReviewWorld, signed_in: SignedIn) -> None:
    item_id = world.add_item(world.new_run())
    reject(world, item_id)
    before = audit_count(world)
    for name in ("alice", "dora"):
        client = signed_in(name)
        page = client.get(f"/items/{item_id}").text
        assert "/reopen" not in page  # no form for them
        for confirm in ("", "yes"):
            r = client.post(f"/items/{item_id}/reopen", data={"reason": "想重新审核", "confirm": confirm,
                                                               "csrf_token": form_token(page)})
            assert r.status_code == 403 and denial_message(USERS[name], Action.item_reopen, "zh-CN") in r.text
    with pytest.raises(ReopenRefused) as info:
        world.catalogue.reopen_decision(item_id, admin_id=world.user_ids["alice"], reason="想重新审核")
    assert info.value.code == "not_admin"
    assert world.catalogue.item_status(item_id) is ItemStatus.rejected and audit_count(world) == before


def test_reopen_needs_a_reason_and_the_csrf_token(world: ReviewWorld, signed_in: SignedIn) -> None:
    item_id = world.add_item(world.new_run())
    reject(world, item_id)
    adam = signed_in("adam")
    before = audit_count(world)
    for confirm in ("", "yes"):
        r = post_reopen(adam, item_id, "  \n ", confirm=confirm)
        assert r.status_code == 400 and t("web.reopen.reason_required", "zh-CN") in r.text
        assert 'id="reopen-error"' in r.text
    r = adam.post(f"/items/{item_id}/reopen", data={"reason": "误判", "confirm": "yes", "csrf_token": "wrong"})
    assert r.status_code == 403
    assert world.catalogue.item_status(item_id) is ItemStatus.rejected and audit_count(world) == before


def test_batched_and_minted_items_cannot_be_reopened_and_the_page_says_why(world: ReviewWorld, signed_in: SignedIn) -> None:
    run = world.new_run()
    batched, minted = world.add_item(run), world.add_item(run)
    for item_id in (batched, minted):
        approve(world, item_id, "alice")
    world.catalogue.create_mint_batch(item_ids=[batched], batch_ref="rf-b1", idempotency_key="key-b1",
                                      request_body={"batch_ref": "rf-b1"}, request_sha256="0" * 64)
    batch = world.catalogue.create_mint_batch(item_ids=[minted], batch_ref="rf-b2", idempotency_key="key-b2",
                                              request_body={"batch_ref": "rf-b2"}, request_sha256="0" * 64)
    world.catalogue.record_mint_receipt(batch, chain="test-chain", tokens=[(minted, "tok-1", "0xabc")], raw={})
    adam = signed_in("adam")
    for item_id, code in ((batched, "batched"), (minted, "minted")):
        page = adam.get(f"/items/{item_id}").text
        assert t(f"web.reopen.refused.{code}", "zh-CN") in page and f'action="/items/{item_id}/reopen"' not in page
        r = post_reopen(adam, item_id, "想撤回", confirm="yes")
        assert r.status_code == 400 and t(f"web.reopen.refused.{code}", "zh-CN") in r.text
    # released back to approved by an operator: it was in a batch once, so it stays as the issuer saw it
    world.catalogue.release_batch("rf-b1", to=ItemStatus.approved, actor="operator", reason="issuer refused")
    assert world.catalogue.item_status(batched) is ItemStatus.approved
    r = post_reopen(adam, batched, "想撤回", confirm="yes")
    assert r.status_code == 400 and t("web.reopen.refused.was_batched", "zh-CN") in r.text
    assert world.catalogue.item_status(batched) is ItemStatus.approved
    assert world.catalogue.item_status(minted) is ItemStatus.minted
    assert [e.action for e in world.catalogue.audit_entries(item_id=batched)][-1] == "status:approved"  # the release's
    assert not [e for e in world.catalogue.audit_entries() if e.action == "status:awaiting_review" and e.details.get("reopen")]


def test_a_sent_back_item_can_be_reopened(world: ReviewWorld) -> None:
    item_id = world.add_item(world.new_run())
    world.catalogue.record_decision(item_id, reviewer_id=world.user_ids["alice"], decision="send_back", reason="请补拍背面")
    assert world.catalogue.reopen_decision(item_id, admin_id=world.user_ids["adam"], reason="背面已有，退回有误") is ItemStatus.awaiting_review
    assert verify_record(world.catalogue, world.store).ok
    with pytest.raises(ReopenRefused) as info:  # awaiting review: nothing to reopen
        world.catalogue.reopen_decision(item_id, admin_id=world.user_ids["adam"], reason="再来一次")
    assert info.value.code == "not_decided"

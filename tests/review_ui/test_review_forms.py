"""The review gate through its web form: CSRF, roles, validation, decisions committed in the catalogue,
the batch-decided callback, and what the queue, item and quarantine pages show."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from review_world import ReviewWorld, form_token
from sqlalchemy import func, select
from starlette.testclient import TestClient

from relicflow.catalogue import ItemStatus
from relicflow.catalogue.ingested import WarningNote
from relicflow.catalogue.models import ReviewDecision
from relicflow.i18n import t

SignedIn = Callable[[str], TestClient]


def decision_count(world: ReviewWorld) -> int:
    with world.catalogue.session() as s:
        return s.scalar(select(func.count(ReviewDecision.id))) or 0


def decide(client: TestClient, item_id: int, decision: str, reason: str = "", *, csrf: str | None = None,
           confirm: str = "yes") -> object:
    """``confirm="yes"``: as sent by the confirmation page's button (reject and send back need it)."""
    token = form_token(client.get(f"/items/{item_id}").text) if csrf is None else csrf
    return client.post(f"/items/{item_id}/decision",
                       data={"decision": decision, "reason": reason, "csrf_token": token, "confirm": confirm})


@pytest.fixture
def run_of_two(world: ReviewWorld) -> tuple[int, int, int]:
    run = world.new_run()
    return run, world.add_item(run), world.add_item(run)


def test_decision_without_or_with_wrong_csrf_is_refused(world: ReviewWorld, signed_in: SignedIn, run_of_two: tuple[int, int, int]) -> None:
    _, item_id, _ = run_of_two
    client = signed_in("alice")
    other = signed_in("bob")
    bobs_token = form_token(other.get(f"/items/{item_id}").text)  # valid, but for another session
    for token in ("", "wrong", bobs_token, "令牌"):
        r = client.post(f"/items/{item_id}/decision", data={"decision": "approve", "csrf_token": token})
        assert r.status_code == 403
        assert t("web.error.csrf", "zh-CN") in r.text
    r = client.post(f"/items/{item_id}/decision", data={"decision": "approve"})
    assert r.status_code == 403
    assert decision_count(world) == 0
    assert world.catalogue.item_status(item_id) is ItemStatus.awaiting_review


def test_approve_redirects_to_the_next_item_and_is_committed_and_audited(world: ReviewWorld, signed_in: SignedIn,
                                                                         run_of_two: tuple[int, int, int]) -> None:
    _, first, second = run_of_two
    client = signed_in("alice")
    r = decide(client, first, "approve")
    assert r.status_code == 303
    assert r.headers["location"] == f"/items/{second}?done=approved&item={first}"
    assert world.catalogue.item_status(first) is ItemStatus.approved
    audit = [(e.actor, e.action) for e in world.catalogue.audit_entries(item_id=first)]
    assert ("alice", "review:approve") in audit and ("alice", "status:approved") in audit
    page = client.get(r.headers["location"])
    assert t("web.flash.approved", "zh-CN", id=first) in page.text
    history = client.get(f"/items/{first}").text
    assert "alice" in history and t("web.decision.not_awaiting", "zh-CN", status=t("web.status.approved", "zh-CN")) in history
    assert 'name="decision"' not in history  # no form on a decided item
    assert world.catalogue.verify_audit_chain() is None


def test_reject_without_reason_is_a_400_with_the_message(world: ReviewWorld, signed_in: SignedIn, run_of_two: tuple[int, int, int]) -> None:
    _, item_id, _ = run_of_two
    client = signed_in("alice")
    for reason in ("", "   \n "):
        r = decide(client, item_id, "reject", reason)
        assert r.status_code == 400
        assert t("web.decision.reason_required", "zh-CN") in r.text
        assert 'name="decision" value="reject"' in r.text  # the form is there to try again
    r = decide(client, item_id, "send_back", "")
    assert r.status_code == 400 and t("web.decision.note_required", "zh-CN") in r.text
    r = decide(client, item_id, "delete")
    assert r.status_code == 400 and t("web.decision.unknown", "zh-CN") in r.text
    assert decision_count(world) == 0
    assert world.catalogue.item_status(item_id) is ItemStatus.awaiting_review


def test_reject_with_reason_and_send_back_with_note(world: ReviewWorld, signed_in: SignedIn, run_of_two: tuple[int, int, int]) -> None:
    _, first, second = run_of_two
    client = signed_in("adam")  # admins may decide too
    r = decide(client, first, "reject", "  画面中有馆外人员肖像，不得发行  ")
    assert r.status_code == 303 and "done=rejected" in r.headers["location"]
    r = decide(client, second, "send_back", "Colour chart missing; rescan with the chart in frame.")
    assert r.status_code == 303 and r.headers["location"] == f"/?done=sent_back&item={second}"
    assert world.catalogue.item_status(first) is ItemStatus.rejected
    assert world.catalogue.item_status(second) is ItemStatus.sent_back
    with world.catalogue.session() as s:
        rows = [(d.item_id, d.decision, d.reason) for d in s.scalars(select(ReviewDecision).order_by(ReviewDecision.id))]
    assert rows == [(first, "reject", "画面中有馆外人员肖像，不得发行"),
                    (second, "send_back", "Colour chart missing; rescan with the chart in frame.")]
    assert t("web.flash.sent_back", "zh-CN", id=second) in client.get(f"/?done=sent_back&item={second}").text


def test_a_decided_item_cannot_be_decided_again(world: ReviewWorld, signed_in: SignedIn, run_of_two: tuple[int, int, int]) -> None:
    _, item_id, _ = run_of_two
    client = signed_in("alice")
    token = form_token(client.get(f"/items/{item_id}").text)
    assert decide(client, item_id, "reject", "duplicate of an issued item", csrf=token).status_code == 303
    r = decide(client, item_id, "approve", csrf=token)  # a stale tab
    assert r.status_code == 400
    assert t("web.decision.not_awaiting", "zh-CN", status=t("web.status.rejected", "zh-CN")) in r.text
    assert world.catalogue.item_status(item_id) is ItemStatus.rejected and decision_count(world) == 1


def test_digitiser_cannot_decide(world: ReviewWorld, signed_in: SignedIn, run_of_two: tuple[int, int, int]) -> None:
    _, item_id, _ = run_of_two
    client = signed_in("dora")
    page = client.get(f"/items/{item_id}")
    assert page.status_code == 200
    assert 'name="decision"' not in page.text and t("web.decision.role_cannot_decide", "zh-CN") in page.text
    r = decide(client, item_id, "approve")  # the session's own, valid CSRF token
    assert r.status_code == 403
    assert decision_count(world) == 0 and world.catalogue.item_status(item_id) is ItemStatus.awaiting_review


def test_graded_relic_needs_two_different_reviewers(world: ReviewWorld, signed_in: SignedIn) -> None:
    item_id = world.add_item(world.new_run(), grade="一级", required_approvals=2)
    alice = signed_in("alice")
    r = decide(alice, item_id, "approve")
    assert r.status_code == 303 and r.headers["location"] == f"/?done=approval_recorded&item={item_id}"
    assert world.catalogue.item_status(item_id) is ItemStatus.awaiting_review
    queue = alice.get("/").text
    assert t("web.badge.approved_by_you", "zh-CN") in queue and t("web.approvals.count", "zh-CN", have=1, need=2) in queue
    page = alice.get(f"/items/{item_id}").text
    assert t("web.decision.already_approved", "zh-CN") in page and 'value="approve"' not in page
    r = decide(alice, item_id, "approve", csrf=form_token(page))
    assert r.status_code == 400 and t("web.decision.already_approved", "zh-CN") in r.text
    r = decide(signed_in("bob"), item_id, "approve")  # a reviewer, not a senior reviewer: refused, with the reason
    assert r.status_code == 400 and t("web.decision.needs_senior", "zh-CN", n=2) in r.text
    assert world.catalogue.item_status(item_id) is ItemStatus.awaiting_review
    r = decide(signed_in("sara"), item_id, "approve")
    assert r.status_code == 303 and "done=approved" in r.headers["location"]
    assert world.catalogue.item_status(item_id) is ItemStatus.approved


def test_on_batch_decided_is_called_once_when_the_run_is_fully_decided(world: ReviewWorld, signed_in: SignedIn,
                                                                      run_of_two: tuple[int, int, int]) -> None:
    run, first, second = run_of_two
    other_run = world.new_run()
    straggler = world.add_item(other_run)
    client = signed_in("alice")
    assert decide(client, first, "approve").status_code == 303
    assert world.batch_calls == []
    assert decide(client, straggler, "reject", "not ours").status_code == 303
    assert world.batch_calls == [other_run]
    assert decide(client, second, "reject", "wrong object photographed").status_code == 303
    assert world.batch_calls == [other_run, run]
    r = decide(client, second, "approve")  # refused: no further call
    assert r.status_code == 400 and world.batch_calls == [other_run, run]


def test_on_batch_decided_failure_does_not_undo_or_hide_the_decision(world: ReviewWorld) -> None:
    run = world.new_run()
    item_id = world.add_item(run)
    calls: list[int] = []

    def broken(run_id: int) -> None:
        calls.append(run_id)
        raise RuntimeError("Prefect is down")

    client = world.client(world.app(on_batch_decided=broken))
    world.login(client, "alice")
    r = decide(client, item_id, "approve")
    assert r.status_code == 303 and r.headers["location"] == f"/?done=approved&item={item_id}"
    assert calls == [run]
    assert world.catalogue.item_status(item_id) is ItemStatus.approved
    assert world.catalogue.gates_ready_to_resume() == []  # (no gate flow run was registered for this run)


def test_queue_shows_items_badges_counts_and_quarantine_link(world: ReviewWorld, signed_in: SignedIn) -> None:
    run = world.new_run()
    first = world.add_item(run, title="青铜鼎", accession="GZ-0001", file_name="GZ-0001_front.tif")
    second = world.add_item(run, title="<img src=x onerror=alert(1)>", duplicate_of=[first],
                            warnings=[WarningNote(code="soft_focus", message_en="The image is soft.", message_zh="图像不够清晰。")])
    world.add_quarantined(run, file_name="GZ-0003.tif")
    page = signed_in("alice").get("/")
    assert page.status_code == 200
    html = page.text
    for text in ("青铜鼎", "GZ-0001", "GZ-0001_front.tif", f"/items/{second}/image/thumbnail",
                 t("web.badge.warnings", "zh-CN", n=1), t("web.badge.duplicates", "zh-CN", n=1),
                 t("web.status.awaiting_review", "zh-CN"), t("web.queue.quarantine_link", "zh-CN", n=1), 'href="/quarantine"'):
        assert text in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html  # autoescaped
    assert html.index(f'href="/items/{first}"') < html.index(f'href="/items/{second}"')


def test_quarantine_lists_reason_code_and_sentence_in_the_ui_language(world: ReviewWorld, signed_in: SignedIn) -> None:
    item_id = world.add_quarantined(world.new_run(), file_name="IMG_0042.tif")
    client = signed_in("dora")
    zh = client.get("/quarantine").text
    assert "IMG_0042.tif" in zh and "truncated_image" in zh and "文件不完整，请从相机重新拷贝。" in zh
    en = client.get("/quarantine?lang=en").text
    assert "The file ends early; copy it from the camera again." in en and "文件不完整" not in en
    assert client.get(f"/items/{item_id}").status_code == 200  # its item page works without an image


def test_item_page_shows_record_with_chinese_labels_warnings_duplicates_and_history(world: ReviewWorld, signed_in: SignedIn) -> None:
    run = world.new_run()
    original = world.add_item(run, title="白玉璧")
    item_id = world.add_item(run, title="白玉璧（二）", accession="YB-0002", duplicate_of=[original],
                             warnings=[WarningNote(code="clipped_highlights", message_en="Highlights are clipped.",
                                                   message_zh="高光溢出。")])
    client = signed_in("alice")
    html = client.get(f"/items/{item_id}").text
    for text in ("总登记号", "藏品名称", "年代", "材质", "级别", "明永乐", "YB-0002", "白玉璧（二）",
                 f'src="/items/{item_id}/images/', "/access\"", "clipped_highlights", "高光溢出。",
                 f'href="/items/{original}"', f'src="/items/{original}/image/thumbnail"', "320 × 240",
                 t("web.item.no_decisions", "zh-CN"), 'name="csrf_token"', t("web.decision.send_back", "zh-CN")):
        assert text in html, text
    english = client.get(f"/items/{item_id}?lang=en").text
    assert "Accession number" in english and "Highlights are clipped." in english
    assert client.get("/items/424242").status_code == 404
    assert decide(client, item_id, "send_back", "请补拍背面").status_code == 303
    history = client.get(f"/items/{item_id}").text
    assert "请补拍背面" in history and "Send back" in history  # (the lang cookie is still en)


def test_digitisation_staff_see_items_sent_back_with_the_reviewers_note(world: ReviewWorld, signed_in: SignedIn) -> None:
    run = world.new_run()
    item_id = world.add_item(run, title="青花梅瓶", accession="MP-0007", file_name="MP-0007_front.tif")
    kept = world.add_item(run, title="白瓷碗", accession="BW-0001")
    assert decide(signed_in("alice"), item_id, "send_back", "瓶口反光过强，请调整灯光后重拍 <b>").status_code == 303
    page = signed_in("dora").get("/quarantine").text  # dora is digitisation staff
    section = page[page.index('id="sent-back"'):]
    for text in ("MP-0007", "青花梅瓶", "MP-0007_front.tif", "瓶口反光过强，请调整灯光后重拍 &lt;b&gt;", "alice"):
        assert text in section, text
    assert "BW-0001" not in section and f'href="/items/{kept}"' not in section


def test_an_item_with_no_sheet_row_says_it_cannot_be_minted_until_its_record_arrives(world: ReviewWorld, signed_in: SignedIn) -> None:
    run = world.new_run()
    recorded = world.add_item(run)
    unrecorded = world.add_item(run, sheet_row=False, file_name="IMG_0042.jpg")
    client = signed_in("alice")
    for locale in ("zh-CN", "en"):
        notice = t("web.item.no_catalogue_record", locale)
        assert notice in client.get(f"/items/{unrecorded}?lang={locale}").text
        assert notice not in client.get(f"/items/{recorded}?lang={locale}").text
    assert "No accession-sheet row" in t("web.item.no_catalogue_record", "en")


def test_a_held_item_shows_why_the_mint_holds_it(world: ReviewWorld, signed_in: SignedIn) -> None:
    run = world.new_run()
    held = world.add_item(run, sheet_row=False, file_name="IMG_0043.jpg")
    fine = world.add_item(run)
    for item_id in (held, fine):
        world.catalogue.record_decision(item_id, reviewer_id=world.user_ids["alice"], decision="approve")
    assessment = world.catalogue.assess_for_mint()
    assert [(i, h.code) for i, h in assessment.held] == [(held, "no_catalogue_record")]
    assert [i for i, _ in assessment.eligible] == [fine]
    client = signed_in("alice")
    english, chinese = client.get(f"/items/{held}?lang=en").text, client.get(f"/items/{held}?lang=zh-CN").text
    hold = world.catalogue.item(held)
    assert t("web.item.mint_hold", "en") in english and "no_catalogue_record" in english
    assert hold.mint_hold_message_en.split(":")[0] in english and hold.mint_hold_message_zh.split("：")[0] in chinese
    assert t("web.item.mint_hold", "en") not in client.get(f"/items/{fine}?lang=en").text

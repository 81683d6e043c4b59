"""The queue page at scale through the real app: a page of fixed size whatever the queue holds, filters and
search from the query string, bad values refused with a 400 page in both languages, and the reviewer's
place kept: queue → item (previous/next in the filtered order) → decision → next item of the same
filtered order → back to the same filtered page."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from review_world import ReviewWorld, form_token
from starlette.testclient import TestClient

from relicflow.catalogue.ingested import WarningNote
from relicflow.i18n import t

SignedIn = Callable[[str], TestClient]
WARN = WarningNote(code="soft_focus", message_en="The image is soft.", message_zh="图像不够清晰。")


def item_links(html: str) -> list[int]:
    """Item ids in the queue table, in order (each row links its id three times)."""
    ids: list[int] = []
    for found in re.findall(r'href="/items/(\d+)[?"]', html):
        if not ids or ids[-1] != int(found):
            ids.append(int(found))
    return ids


def link(html: str, css_class: str) -> str | None:
    match = re.search(rf'class="{css_class}" href="([^"]*)"', html)
    return html_lib.unescape(match.group(1)) if match else None


@pytest.fixture
def two_runs(world: ReviewWorld) -> dict[str, list[int] | int]:
    run1, run2 = world.new_run(), world.new_run()
    first = [world.add_item(run1, accession=f"R1-{n:02d}") for n in range(3)]
    warned = [world.add_item(run2, accession=f"R2-{n:02d}", warnings=[WARN] if n % 2 == 0 else None) for n in range(7)]
    return {"run1": run1, "run2": run2, "first": first, "second": warned}


def test_pages_have_a_fixed_size_and_link_to_each_other(world: ReviewWorld, signed_in: SignedIn) -> None:
    world.settings.review_page_size = 5
    run = world.new_run()
    made = [world.add_item(run) for _ in range(12)]
    client = signed_in("alice")
    seen, href, pages = [], "/", 0
    while href:
        page = client.get(href)
        assert page.status_code == 200
        ids = item_links(page.text)
        assert len(ids) <= 5 and page.text.count('loading="lazy"') == len(ids)  # thumbnails only for the page's rows
        seen += ids
        href = link(page.text, "pager-next")
        pages += 1
    assert seen == made and pages == 3
    last = client.get(f"/?after={urlsplit(link(client.get('/').text, 'pager-next') or '').query.split('=')[1]}")
    assert item_links(last.text) == made[5:10]
    back = client.get(link(last.text, "pager-prev") or "")
    assert item_links(back.text) == made[:5]


def test_filters_and_search_from_the_query_string(world: ReviewWorld, signed_in: SignedIn, two_runs: dict) -> None:
    client = signed_in("alice")
    assert item_links(client.get(f"/?run={two_runs['run1']}").text) == two_runs["first"]
    warned = [i for n, i in enumerate(two_runs["second"]) if n % 2 == 0]
    page = client.get("/?warnings=1")
    assert item_links(page.text) == warned
    assert 'class="chip chip-warnings chip-active"' in page.text
    assert f"{t('web.queue.chip.warnings', 'zh-CN')} <strong>4</strong>" in page.text
    assert item_links(client.get("/?q=r2-03").text) == [two_runs["second"][3]]
    assert item_links(client.get("/?q=%25").text) == []  # '%' is a character, not "anything"
    assert item_links(client.get("/?sort=newest").text)[0] == two_runs["second"][-1]
    nothing = client.get("/?q=no-such-thing")
    assert nothing.status_code == 200 and t("web.queue.no_match", "zh-CN") in nothing.text


@pytest.mark.parametrize(("query", "code"), [
    ("status=approved", "status"), ("run=abc", "run"), ("run=999", "run"), ("run=-1", "run"), ("grade=五级", "grade"),
    ("warnings=yes", "warnings"), ("duplicates=2", "duplicates"), ("compliance=x", "compliance"), ("approval=all", "approval"),
    ("sort=random", "sort"), ("after=%21%21", "cursor"), ("after=WyJhIiwxXQ", "cursor"), ("q=" + "x" * 201, "search"),
    ("after=MQ&before=MQ", "cursor"),
])
def test_unknown_query_values_get_a_clear_400_page(world: ReviewWorld, signed_in: SignedIn, two_runs: dict,
                                                   query: str, code: str) -> None:
    client = signed_in("alice")
    item_id = two_runs["first"][0]
    for path in ("/", f"/items/{item_id}"):
        for locale in ("zh-CN", "en"):
            r = client.get(f"{path}?{query}&lang={locale}")
            assert r.status_code == 400, (path, query)
            assert html_lib.escape(t(f"web.queue.invalid.{code}", locale), quote=False) in r.text


def test_the_place_in_the_queue_travels_to_the_item_through_the_decision_and_back(world: ReviewWorld, signed_in: SignedIn,
                                                                                 two_runs: dict) -> None:
    client = signed_in("alice")
    warned = [i for n, i in enumerate(two_runs["second"]) if n % 2 == 0]  # 4 items, all in run 2
    world.settings.review_page_size = 5
    queue = client.get("/?warnings=1&sort=newest")
    assert item_links(queue.text) == warned[::-1]
    item_href = html_lib.unescape(re.search(rf'href="(/items/{warned[2]}\?[^"]*)"', queue.text).group(1))  # type: ignore[union-attr]
    assert parse_qs(urlsplit(item_href).query) == {"warnings": ["1"], "sort": ["newest"]}

    item = client.get(item_href)
    assert item.status_code == 200
    assert link(item.text, "back") == "/?warnings=1&sort=newest"
    assert link(item.text, "item-prev") == f"/items/{warned[3]}?warnings=1&sort=newest"  # newest first: the newer one
    assert link(item.text, "item-next") == f"/items/{warned[1]}?warnings=1&sort=newest"

    action = html_lib.unescape(re.search(r'<form method="post" action="([^"]*)" class="decide decide-approve"', item.text).group(1))  # type: ignore[union-attr]
    assert action == f"/items/{warned[2]}/decision?warnings=1&sort=newest"
    r = client.post(action, data={"decision": "approve", "csrf_token": form_token(item.text), "seen": form_token(item.text, "seen")})
    assert r.status_code == 303
    target = urlsplit(r.headers["location"])
    assert target.path == f"/items/{warned[1]}"  # the next in the filtered order, not the next id
    assert parse_qs(target.query) == {"warnings": ["1"], "sort": ["newest"], "done": ["approved"], "item": [str(warned[2])]}

    # reject goes through its confirmation page, which keeps the place too
    nxt = client.get(r.headers["location"])
    confirm = client.post(f"/items/{warned[1]}/decision?warnings=1&sort=newest",
                          data={"decision": "reject", "reason": "模糊", "csrf_token": form_token(nxt.text)})
    assert confirm.status_code == 200 and f'action="/items/{warned[1]}/decision?warnings=1&amp;sort=newest"' in confirm.text
    r = client.post(f"/items/{warned[1]}/decision?warnings=1&sort=newest",
                    data={"decision": "reject", "reason": "模糊", "csrf_token": form_token(nxt.text), "confirm": "yes"})
    assert urlsplit(r.headers["location"]).path == f"/items/{warned[0]}"
    r = client.post(f"/items/{warned[0]}/decision?warnings=1&sort=newest",
                    data={"decision": "approve", "csrf_token": form_token(nxt.text)})
    assert urlsplit(r.headers["location"]).path == f"/items/{warned[3]}"  # wraps to the start of the order
    r = client.post(f"/items/{warned[3]}/decision?warnings=1&sort=newest",
                    data={"decision": "approve", "csrf_token": form_token(nxt.text)})
    back = urlsplit(r.headers["location"])  # nothing left in this filter: back to the same filtered queue
    assert back.path == "/" and parse_qs(back.query)["warnings"] == ["1"]
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and t("web.queue.no_match", "zh-CN") in page.text


def test_back_to_the_queue_returns_to_the_same_page(world: ReviewWorld, signed_in: SignedIn) -> None:
    world.settings.review_page_size = 5
    run = world.new_run()
    made = [world.add_item(run) for _ in range(8)]
    client = signed_in("alice")
    second_page = client.get(link(client.get(f"/?run={run}").text, "pager-next") or "")
    assert item_links(second_page.text) == made[5:]
    item_href = html_lib.unescape(re.search(rf'href="(/items/{made[6]}\?[^"]*)"', second_page.text).group(1))  # type: ignore[union-attr]
    back = link(client.get(item_href).text, "back")
    assert back is not None and item_links(client.get(back).text) == made[5:]


def test_a_damaged_queue_link_never_costs_a_decision(world: ReviewWorld, signed_in: SignedIn, two_runs: dict) -> None:
    client = signed_in("alice")
    item_id = two_runs["first"][0]
    token = form_token(client.get(f"/items/{item_id}").text)
    r = client.post(f"/items/{item_id}/decision?sort=bogus", data={"decision": "approve", "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == f"/items/{two_runs['first'][1]}?done=approved&item={item_id}"


def test_chip_counts_are_kept_for_their_max_age(world: ReviewWorld) -> None:
    from review_ui.queue_counts import QueueCounts

    run = world.new_run()
    world.add_item(run)
    alice = world.user_ids["alice"]
    kept = QueueCounts(world.catalogue, max_age_s=3600)
    assert kept.counts(alice)["awaiting_review"] == 1 and kept.runs() == [run]
    world.add_item(world.new_run())
    assert kept.counts(alice)["awaiting_review"] == 1 and kept.runs() == [run]  # not recounted yet
    fresh = QueueCounts(world.catalogue, max_age_s=0)
    assert fresh.counts(alice)["awaiting_review"] == 2 and len(fresh.runs()) == 2
